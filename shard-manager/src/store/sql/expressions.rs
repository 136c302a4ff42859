//! Fixed SQL that diesel's DSL either has no word for (`nextval`, `xmax`, the WAL
//! position functions) or will not let PostgreSQL prepare (an upsert), written so the
//! request path's statements are prepared once per connection.
//!
//! diesel marks a statement unsafe to cache as a prepared statement when it holds a raw
//! SQL literal (`diesel::dsl::sql`), an `ON CONFLICT ... DO UPDATE` or an `UPDATE` (when
//! the gateway ran on diesel-async, that cost a Parse round trip on every execution).
//! Everything here has fixed text and a static query id; diesel now only renders the
//! wire client's statements from it (`statement_text`), once per process.

use diesel::expression::ValidGrouping;
use diesel::expression::{is_aggregate, AppearsOnTable, Expression, SelectableExpression};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Integer, Jsonb, Nullable, Text, Timestamptz};
use diesel::QueryResult;

use crate::store::raw_json::RawJson;
use crate::store::row::NewRecord;

/// Declares a unit struct that renders as a fixed SQL expression of the given type.
macro_rules! fixed_sql {
    ($(#[$doc:meta])* $name:ident: $ty:ty = $text:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, QueryId)]
        pub struct $name;

        impl Expression for $name {
            type SqlType = $ty;
        }

        impl QueryFragment<Pg> for $name {
            fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
                out.push_sql($text);
                Ok(())
            }
        }

        impl<QS> AppearsOnTable<QS> for $name {}
        impl<QS> SelectableExpression<QS> for $name {}

        impl<GB> ValidGrouping<GB> for $name {
            type IsAggregate = is_aggregate::Never;
        }
    };
}

fixed_sql! {
    /// The next record version from the shard's sequence.
    NextVersion: BigInt = "nextval('record_version_seq')"
}

fixed_sql! {
    /// The primary's WAL write position.
    CurrentWal: Text = "pg_current_wal_lsn()::text"
}

fixed_sql! {
    /// The shard's shared cache epoch (migration `cache_epoch`; see `cache::epochs`).
    /// Read in the same statement as a WAL position, which is then past every epoch
    /// raise the statement sees.
    CacheEpoch: Nullable<BigInt> = "(SELECT epoch FROM shardgate_cache)"
}

fixed_sql! {
    /// A replica's replay position (NULL on a primary).
    ReplayWal: Nullable<Text> = "pg_last_wal_replay_lsn()::text"
}

fixed_sql! {
    /// Whether a stored row's slot is this shard's (lists across shards keep only
    /// those: rows left behind on a shard that no longer owns their slot stay hidden).
    OwnedRow: Bool = "(NOT EXISTS (SELECT 1 FROM shardgate_map) \
                      OR slot IN (SELECT slot FROM shardgate_slots))"
}

/// Declares an expression `(SELECT function($n))` over one integer bind: the shard's
/// ownership checks (migration `slot_ownership`). Evaluated once per statement, before
/// any row is touched (PostgreSQL runs an uncorrelated sub-select as a one-time filter),
/// and raising SQLSTATE SG001 when the shard does not own the slot.
macro_rules! slot_check {
    ($(#[$doc:meta])* $name:ident = $function:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, QueryId)]
        pub struct $name(pub i32);

        impl Expression for $name {
            type SqlType = Bool;
        }

        impl QueryFragment<Pg> for $name {
            fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
                out.push_sql(concat!("(SELECT ", $function, "("));
                out.push_bind_param::<Integer, _>(&self.0)?;
                out.push_sql("))");
                Ok(())
            }
        }

        impl<QS> AppearsOnTable<QS> for $name {}
        impl<QS> SelectableExpression<QS> for $name {}

        impl<GB> ValidGrouping<GB> for $name {
            type IsAggregate = is_aggregate::Never;
        }
    };
}

slot_check! {
    /// A write's claim on its slot: a shared lock a map change waits for, then the check.
    Claims = "shardgate_claim"
}

slot_check! {
    /// A read's check that this server serves the slot (no lock: replicas cannot lock).
    Serves = "shardgate_serves"
}

/// Inserts one record or replaces its data, bumping its version. Returns (version,
/// created_at, updated_at, inserted).
#[derive(Debug, Clone, Copy)]
pub struct UpsertOne<'a>(pub &'a NewRecord<'a>);

impl QueryId for UpsertOne<'_> {
    type QueryId = UpsertOne<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for UpsertOne<'_> {
    type SqlType = (BigInt, Timestamptz, Timestamptz, Bool);
}

impl QueryFragment<Pg> for UpsertOne<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.push_upsert(&mut out, "", "version, created_at, updated_at, (xmax = 0)")
    }
}

impl<'a> UpsertOne<'a> {
    /// The upsert, with `also` added to its condition and `returning` as what it
    /// returns: the plain statement, or a CTE of one with an idempotency key.
    pub(in crate::store) fn push_upsert<'b>(
        &self,
        out: &mut AstPass<'_, 'b, Pg>,
        also: &str,
        returning: &str,
    ) -> QueryResult<()>
    where
        'a: 'b,
    {
        let rec = self.0;
        out.push_sql("INSERT INTO records (table_name, shard_key, id, slot, data) SELECT ");
        out.push_bind_param::<Text, _>(&rec.table_name)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&rec.shard_key)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&rec.id)?;
        out.push_sql(", ");
        out.push_bind_param::<Integer, _>(&rec.slot)?;
        out.push_sql(", ");
        out.push_bind_param::<Jsonb, _>(rec.data)?;
        // Nothing is written unless this shard owns the slot (SG001 otherwise).
        out.push_sql(" WHERE (SELECT shardgate_claim(");
        out.push_bind_param::<Integer, _>(&rec.slot)?;
        out.push_sql("))");
        out.push_sql(also);
        out.push_sql(
            " ON CONFLICT (table_name, shard_key, id) DO UPDATE SET \
             data = excluded.data, slot = excluded.slot, \
             version = nextval('record_version_seq'), updated_at = now() RETURNING ",
        );
        out.push_sql(returning);
        Ok(())
    }
}

/// Inserts or replaces many records (unique identities) in one statement: five arrays,
/// one per column, unnested into rows (the wire client binds the same arrays). One prepared statement whatever the batch size,
/// where a multi-row VALUES list is parsed and planned anew for every batch (with five
/// parameters per row). Returns (shard_key, id, version, created_at, updated_at).
#[derive(Debug, Clone)]
pub struct UpsertMany<'a> {
    pub(crate) tables: Vec<&'a str>,
    pub(crate) keys: Vec<&'a str>,
    pub(crate) ids: Vec<&'a str>,
    pub(crate) slots: Vec<i32>,
    pub(crate) data: Vec<&'a RawJson>,
}

impl<'a> UpsertMany<'a> {
    pub fn new(rows: &'a [NewRecord<'a>]) -> Self {
        Self {
            tables: rows.iter().map(|r| r.table_name).collect(),
            keys: rows.iter().map(|r| r.shard_key).collect(),
            ids: rows.iter().map(|r| r.id).collect(),
            slots: rows.iter().map(|r| r.slot).collect(),
            data: rows.iter().map(|r| r.data).collect(),
        }
    }
}

impl QueryId for UpsertMany<'_> {
    type QueryId = UpsertMany<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for UpsertMany<'_> {
    type SqlType = (Text, Text, BigInt, Timestamptz, Timestamptz);
}

impl QueryFragment<Pg> for UpsertMany<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.push_upsert(
            &mut out,
            "",
            "shard_key, id, version, created_at, updated_at",
        )
    }
}

impl<'a> UpsertMany<'a> {
    /// The statement, with `also` added to its WHERE (more conditions, each starting
    /// with AND, over the batch's rows as `n`) and `returning` as what it returns:
    /// written inside a CTE by `idempotent_write`.
    pub(in crate::store) fn push_upsert<'b>(
        &'b self,
        out: &mut AstPass<'_, 'b, Pg>,
        also: &'static str,
        returning: &'static str,
    ) -> QueryResult<()> {
        out.push_sql(
            "INSERT INTO records (table_name, shard_key, id, slot, data) SELECT * FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.tables)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.keys)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Integer>, _>(&self.slots)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Jsonb>, _>(&self.data)?;
        // Every slot of the batch must be this shard's, or nothing is written (SG001).
        out.push_sql(
            ") AS n (table_name, shard_key, id, slot, data) WHERE (SELECT shardgate_claim(",
        );
        out.push_bind_param::<Array<Integer>, _>(&self.slots)?;
        out.push_sql("))");
        out.push_sql(also);
        out.push_sql(
            " ON CONFLICT (table_name, shard_key, id) DO UPDATE SET \
             data = excluded.data, slot = excluded.slot, \
             version = nextval('record_version_seq'), updated_at = now() RETURNING ",
        );
        out.push_sql(returning);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::query_builder::QueryFragment;

    fn is_cacheable<T: QueryFragment<Pg> + QueryId>(q: T) -> bool {
        T::HAS_STATIC_QUERY_ID && q.is_safe_to_cache_prepared(&Pg).unwrap()
    }

    #[test]
    fn statements_using_them_stay_cacheable() {
        assert!(is_cacheable(diesel::select(CurrentWal)));
        assert!(is_cacheable(diesel::select((CurrentWal, CacheEpoch))));
        assert!(is_cacheable(diesel::select(ReplayWal)));
        // The raw literal they replace is not: the reason this module exists.
        assert!(!is_cacheable(diesel::select(diesel::dsl::sql::<Text>(
            "pg_current_wal_lsn()::text"
        ))));
    }

    #[test]
    fn the_upsert_is_cacheable_and_binds_every_value() {
        let data = RawJson::from_value(&serde_json::json!({"name": "ada"}));
        let rec = NewRecord {
            table_name: "users",
            shard_key: "u1",
            id: "r1",
            slot: 7,
            data: &data,
        };
        assert!(is_cacheable(UpsertOne(&rec)));
        let sql = diesel::debug_query::<Pg, _>(&UpsertOne(&rec)).to_string();
        assert!(
            sql.starts_with(
                "INSERT INTO records (table_name, shard_key, id, slot, data) \
                 SELECT $1, $2, $3, $4, $5 WHERE (SELECT shardgate_claim($6)) ON CONFLICT"
            ),
            "{sql}"
        );
        assert!(
            sql.contains(
                r#"binds: ["users", "u1", "r1", 7, RawJson(RawValue({"name":"ada"})), 7]"#
            ),
            "{sql}"
        );
    }

    #[test]
    fn the_bulk_upsert_is_one_cacheable_statement_with_five_arrays() {
        let (a, b) = (
            RawJson::from_value(&serde_json::json!({"n": 1})),
            serde_json::from_str::<RawJson>(r#"{"n": 2}"#).unwrap(),
        );
        let rows = [
            NewRecord {
                table_name: "orders",
                shard_key: "k1",
                id: "o1",
                slot: 1,
                data: &a,
            },
            NewRecord {
                table_name: "orders",
                shard_key: "k2",
                id: "o2",
                slot: 2,
                data: &b,
            },
        ];
        let q = UpsertMany::new(&rows);
        assert!(is_cacheable(q.clone()));
        let sql = diesel::debug_query::<Pg, _>(&q).to_string();
        assert!(sql.contains("unnest($1, $2, $3, $4, $5)"), "{sql}");
        assert!(
            sql.contains(r#"binds: [["orders", "orders"], ["k1", "k2"], ["o1", "o2"], [1, 2]"#),
            "{sql}"
        );
    }

    #[test]
    fn they_render_their_fixed_text() {
        let q = diesel::select((NextVersion, CurrentWal));
        assert_eq!(
            diesel::debug_query::<Pg, _>(&q).to_string(),
            "SELECT nextval('record_version_seq'), pg_current_wal_lsn()::text -- binds: []"
        );
    }
}
