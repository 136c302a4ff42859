//! diesel's view of the tables the migrations create.

diesel::table! {
    /// Every logical table's records on one shard.
    records (table_name, shard_key, id) {
        table_name -> Text,
        shard_key -> Text,
        id -> Text,
        slot -> Int4,
        data -> Jsonb,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}
