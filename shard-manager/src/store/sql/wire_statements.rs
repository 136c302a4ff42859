//! The text of the statements the wire client (`crate::wire`) prepares by hand: a
//! write's (one record, many, a delete, and what is read after the commit) and a point
//! read's two, rendered by diesel from the fragments the
//! rest of the store builds its statements from, so the two paths cannot drift apart.

use diesel::pg::{Pg, PgQueryBuilder};
use diesel::query_builder::{QueryBuilder, QueryFragment};
use diesel::{ExpressionMethods, QueryDsl, QueryResult};

use super::claim::ClaimKey;
use super::expressions::{
    CacheEpoch, Claims, CurrentWal, NextVersion, ReplayWal, UpsertMany, UpsertOne,
};
use super::find::FindOne;
use super::idempotent_write::{DeleteIdempotent, UpsertManyIdempotent, UpsertOneIdempotent};
use super::records::list_statement;
use super::schema::records;
use crate::store::cursor::{Cursor, ListQuery};
use crate::store::idempotency_key::IdempotencyKey;
use crate::store::raw_json::RawJson;
use crate::store::row::NewRecord;

/// The wire client's statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireStatements {
    /// The upsert. Binds: `$1` table (text), `$2` shard key (text), `$3` id (text), `$4`
    /// slot (int4), `$5` document (jsonb), `$6` the slot again (int4, for the claim).
    /// Returns (version int8, created_at timestamptz, updated_at timestamptz, inserted
    /// bool).
    pub upsert: String,
    /// Read after the upsert's commit: (WAL position text, cache epoch int8 or NULL).
    pub commit_position: String,
    /// The point read. Binds: `$1` slot (int4), `$2` table, `$3` shard key, `$4` id
    /// (text). Returns the columns of `Record` in its field order.
    pub find: String,
    /// A replica's replay position (text, NULL on a primary).
    pub replay_wal: String,
    /// The upsert of many records: `$1`..`$5` arrays of tables, shard keys, ids (text[]),
    /// slots (int4[]) and documents (jsonb[]), one element per record; `$6` the slots
    /// again, for the claim. Returns (shard_key, id, version, created_at, updated_at)
    /// per record, in no particular order.
    pub upsert_many: String,
    /// The delete. Binds: `$1` slot (int4, for the claim), `$2` table, `$3` shard key,
    /// `$4` id (text). Returns the version the deletion took (int8), no row if there
    /// was no record.
    pub delete: String,
    /// A transaction part's lock and condition on one record (migration
    /// `transactions`). Binds: `$1` slot (int4), `$2` table, `$3` shard key, `$4` id
    /// (text), `$5` the expected version (int8 or NULL: no condition), `$6` the
    /// operation's position in the request (int4, echoed in the refusal's DETAIL). Returns the
    /// record's current version (int8, 0 when absent); SG005 when the condition fails.
    pub txn_lock: String,
    /// A keyed transaction's check, once the record is locked (migration
    /// `transaction_idempotency`). Binds: `$1` caller, `$2` key, `$3` table, `$4` shard
    /// key, `$5` id (text), `$6` the expected version (int8 or NULL), `$7` the operation's
    /// position (int4). Returns the record's version before the write (0: absent);
    /// SG006 when the key's entry for the record exists (applied before), else SG005
    /// when the condition fails (the lock then carries none).
    pub txn_seen: String,
    /// A keyed transaction's entry for one record, after its write. Binds: `$1` caller,
    /// `$2` key (text), `$3` fingerprint (bytea), `$4` slot (int4), `$5` table, `$6`
    /// shard key, `$7` id (text), `$8` ttl in seconds (int8), `$9` a delete (bool).
    pub txn_entry: String,
    /// The writes sent with an idempotency key (`sql::idempotent_write`): each statement above
    /// between the key's lookup and the entry that keeps its answer. Binds: `$1` caller,
    /// `$2` key (text); the write's own binds, numbered on from `$3`; then caller, key
    /// (text), fingerprint (bytea), slot (int4 or NULL), time to live in seconds (int8).
    /// Rows as `store::idempotent_answer` reads them.
    pub upsert_idempotent: String,
    pub delete_idempotent: String,
    pub upsert_many_idempotent: String,
    /// A key's claim at its home slot (`claim_sql::ClaimKey`, whose doc gives its binds).
    pub claim: String,
    /// The list statement (`records::list_statement`, whose doc gives its binds) in its
    /// eight shapes, indexed by [`ListShape::index`].
    pub lists: Vec<String>,
}

/// Which of the list statement's shapes a list takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListShape {
    /// One shard key's records (binds its slot and key).
    pub keyed: bool,
    /// A `where` filter (binds it).
    pub filtered: bool,
    /// After a cursor (binds its three parts).
    pub after: bool,
}

impl ListShape {
    /// How many shapes there are.
    pub const COUNT: usize = 8;

    /// This shape's place among [`ListShape::all`], 0 to 7.
    pub fn index(self) -> usize {
        usize::from(self.keyed) | usize::from(self.filtered) << 1 | usize::from(self.after) << 2
    }

    /// Every shape, in index order.
    pub fn all() -> impl Iterator<Item = ListShape> {
        (0..Self::COUNT).map(|i| ListShape {
            keyed: i & 1 != 0,
            filtered: i & 2 != 0,
            after: i & 4 != 0,
        })
    }
}

/// Renders every statement.
pub fn wire_statements() -> QueryResult<WireStatements> {
    let data = RawJson::from_value(&serde_json::Value::Null);
    let row = NewRecord {
        table_name: "",
        shard_key: "",
        id: "",
        slot: 0,
        data: &data,
    };
    let find = FindOne {
        table: "",
        key: "",
        slot: 0,
        id: "",
    };
    let delete = render(&delete_one(&find))?;
    let idempotency = IdempotencyKey {
        caller: String::new(),
        key: String::new(),
        fingerprint: [0; 32],
        ttl_secs: 0,
    };
    let upsert_idempotent = render(&UpsertOneIdempotent {
        rec: &row,
        idempotency: &idempotency,
        slot: None,
    })?;
    let delete_idempotent = render(&DeleteIdempotent {
        table: "",
        key: "",
        slot: 0,
        id: "",
        idempotency: &idempotency,
        kept_slot: None,
    })?;
    let upsert_many_idempotent = render(&UpsertManyIdempotent {
        rows: UpsertMany::new(std::slice::from_ref(&row)),
        idempotency: &idempotency,
    })?;
    let mut lists = Vec::with_capacity(ListShape::COUNT);
    for shape in ListShape::all() {
        let q = ListQuery {
            limit: 1,
            max_bytes: 0,
            filter: shape
                .filtered
                .then(|| RawJson::from_value(&serde_json::json!({}))),
            after: shape.after.then(|| Cursor {
                updated_at: chrono::DateTime::UNIX_EPOCH,
                shard_key: String::new(),
                id: String::new(),
            }),
        };
        let key = shape.keyed.then_some(("", 0));
        lists.push(render(&list_statement("", key, &q))?);
    }
    Ok(WireStatements {
        upsert: render(&UpsertOne(&row))?,
        commit_position: render(&diesel::select((CurrentWal, CacheEpoch)))?,
        find: render(&find)?,
        replay_wal: render(&diesel::select(ReplayWal))?,
        upsert_many: render(&UpsertMany::new(std::slice::from_ref(&row)))?,
        delete,
        txn_lock: "SELECT shardgate_txn_lock($1, $2, $3, $4, $5, $6)".into(),
        txn_seen: "SELECT shardgate_txn_seen($1, $2, $3, $4, $5, $6, $7)".into(),
        txn_entry: "SELECT shardgate_txn_remember($1, $2, $3, $4, $5, $6, $7, $8, $9)".into(),
        upsert_idempotent,
        delete_idempotent,
        upsert_many_idempotent,
        claim: render(&ClaimKey {
            idempotency: &idempotency,
            slot: 0,
        })?,
        lists,
    })
}

/// The delete of one record by the point read's identity, its slot claimed (a write's
/// check) rather than served (a read's).
fn delete_one<'a>(at: &'a FindOne<'a>) -> impl QueryFragment<Pg> + 'a {
    diesel::delete(
        records::table
            .filter(Claims(at.slot))
            .filter(records::table_name.eq(at.table))
            .filter(records::shard_key.eq(at.key))
            .filter(records::id.eq(at.id)),
    )
    .returning(NextVersion)
}

fn render(query: &impl QueryFragment<Pg>) -> QueryResult<String> {
    let mut out = PgQueryBuilder::default();
    query.to_sql(&mut out, &Pg)?;
    Ok(out.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statements_bind_in_the_documented_order() {
        let s = wire_statements().expect("renders");
        assert_eq!(
            s.upsert,
            "INSERT INTO records (table_name, shard_key, id, slot, data) SELECT $1, $2, $3, $4, $5 \
             WHERE (SELECT shardgate_claim($6)) ON CONFLICT (table_name, shard_key, id) DO UPDATE \
             SET data = excluded.data, slot = excluded.slot, \
             version = nextval('record_version_seq'), updated_at = now() \
             RETURNING version, created_at, updated_at, (xmax = 0)"
        );
        assert_eq!(
            s.commit_position,
            "SELECT pg_current_wal_lsn()::text, (SELECT epoch FROM shardgate_cache)"
        );
        assert_eq!(
            s.find,
            "SELECT table_name, shard_key, id, slot, data, version, created_at, updated_at \
             FROM records WHERE (SELECT shardgate_serves($1)) AND table_name = $2 \
             AND shard_key = $3 AND id = $4 LIMIT 1"
        );
        assert_eq!(s.replay_wal, "SELECT pg_last_wal_replay_lsn()::text");
        assert_eq!(
            s.upsert_many,
            "INSERT INTO records (table_name, shard_key, id, slot, data) \
             SELECT * FROM unnest($1, $2, $3, $4, $5) AS n (table_name, shard_key, id, slot, data) \
             WHERE (SELECT shardgate_claim($6)) \
             ON CONFLICT (table_name, shard_key, id) DO UPDATE \
             SET data = excluded.data, slot = excluded.slot, \
             version = nextval('record_version_seq'), updated_at = now() \
             RETURNING shard_key, id, version, created_at, updated_at"
        );
        assert_eq!(
            s.delete,
            "DELETE FROM \"records\" WHERE ((((SELECT shardgate_claim($1)) \
             AND (\"records\".\"table_name\" = $2)) AND (\"records\".\"shard_key\" = $3)) \
             AND (\"records\".\"id\" = $4)) RETURNING nextval('record_version_seq')"
        );
    }

    #[test]
    fn writes_with_a_key_bind_the_key_then_the_write_then_the_entry() {
        let s = wire_statements().expect("renders");
        let prior = "WITH prior AS (SELECT fingerprint, answer FROM shardgate_idempotency \
                     WHERE caller = $1 AND key = $2 AND expires_at > now()), ";
        for (text, own, kept, ttl, last) in [
            (
                &s.upsert_idempotent,
                "SELECT $3, $4, $5, $6, $7 WHERE (SELECT shardgate_claim($8))",
                "SELECT $9, $10, $11, $12, jsonb_build_object(",
                "now() + $13 * interval",
                13,
            ),
            (
                &s.delete_idempotent,
                "shardgate_claim($3) AS ok), gone AS (DELETE FROM records WHERE (SELECT ok \
                 FROM claimed) AND NOT EXISTS (SELECT 1 FROM prior) AND table_name = $4 \
                 AND shard_key = $5 AND id = $6",
                "SELECT $7, $8, $9, $10, jsonb_build_object(",
                "now() + $11 * interval",
                11,
            ),
        ] {
            assert!(text.starts_with(prior), "{text}");
            for part in [own, kept, ttl] {
                assert!(text.contains(part), "{part:?} not in {text}");
            }
            let next = format!("${}", last + 1);
            assert!(!text.contains(&next), "{next} in {text}");
        }
    }

    #[test]
    fn a_bulk_group_with_a_key_binds_the_key_and_batch_then_the_write_then_the_entries() {
        let s = wire_statements().expect("renders");
        let text = &s.upsert_many_idempotent;
        for part in [
            "WITH prior AS (SELECT e.table_name, e.shard_key, e.id, e.fingerprint, \
             (e.answer->>'version')::bigint AS version, e.fingerprint <> $1 AS other FROM shardgate_idempotency_records e \
             WHERE e.caller = $2 AND e.key = $3",
            "(SELECT * FROM unnest($4, $5, $6)))",
            "unnest($7, $8, $9, $10, $11) AS n (table_name, shard_key, id, slot, data) \
             WHERE (SELECT shardgate_claim($12)) AND NOT EXISTS",
            "SELECT $13, $14, table_name, shard_key, id, slot, $15, \
             jsonb_build_object('version', version), now() + $16 * interval",
        ] {
            assert!(text.contains(part), "{part:?} not in {text}");
        }
        assert!(!text.contains("$17"), "{text}");
    }

    #[test]
    fn a_claim_binds_the_key_then_its_home_slot() {
        let s = wire_statements().expect("renders");
        assert!(
            s.claim.starts_with(
                "INSERT INTO shardgate_idempotency_claims AS c \
                 (caller, key, fingerprint, slot, expires_at) SELECT $1, $2, $3, $4, \
                 now() + $5 * interval '1 second' WHERE (SELECT shardgate_claim($6)) \
                 ON CONFLICT (caller, key) DO UPDATE"
            ),
            "{}",
            s.claim
        );
        assert!(s.claim.ends_with("RETURNING fingerprint"));
    }

    #[test]
    fn list_shapes_are_numbered_as_listed() {
        let all: Vec<ListShape> = ListShape::all().collect();
        assert_eq!(all.len(), ListShape::COUNT);
        for (i, shape) in all.iter().enumerate() {
            assert_eq!(shape.index(), i);
        }
        let full = ListShape {
            keyed: true,
            filtered: true,
            after: true,
        };
        assert_eq!(full.index(), 7);
    }
}
