//! The `records` table as diesel sees it, for the benchmark's own statements (the
//! gateway's request path sends plain SQL text: `shard_manager::store::statements`),
//! and a document bound and read as `jsonb` text, as the gateway keeps it.

use std::io::Write;

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Jsonb;

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

/// A JSON document as its text, written and read as `jsonb` without building a tree.
#[derive(Debug, Clone, PartialEq, Eq, FromSqlRow, AsExpression)]
#[diesel(sql_type = Jsonb)]
pub struct JsonText(pub String);

impl FromSql<Jsonb, Pg> for JsonText {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        // jsonb's binary form: a version byte (1), then the JSON text.
        let Some((1, text)) = value.as_bytes().split_first() else {
            return Err("unsupported jsonb version".into());
        };
        Ok(Self(std::str::from_utf8(text)?.to_owned()))
    }
}

impl ToSql<Jsonb, Pg> for JsonText {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        // jsonb's binary form: a version byte (1), then the JSON text.
        out.write_all(&[1])?;
        out.write_all(self.0.as_bytes())?;
        Ok(serialize::IsNull::No)
    }
}
