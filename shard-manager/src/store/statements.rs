//! The text of every statement the request path sends, as PostgreSQL receives it: read
//! a statement here, whole, with what it binds and what it returns.
//!
//! The wire client (`crate::wire`) prepares the statements of writes and reads once per
//! connection, each under its own name (`wire::statements`), and binds their parameters
//! in binary, in the order each doc line gives (`$1`, `$2`, ...). The statements of
//! health checks and upkeep take no parameter from a request and go with the simple
//! protocol (`wire::upkeep`).
//!
//! The order of the binds is part of each statement: the wire client's parameter types
//! (`wire::statements`) and its binds (`wire::write`, `wire::read`, `wire::list`) follow
//! it. What a refusal means is decided by its SQLSTATE (`crate::error::sqlstate`): the
//! shard's SQL functions raise SG001 (slot not this shard's), SG002 (an idempotency key's
//! entry committed meanwhile), SG005 and SG006 (a transaction's condition, its key).
//!
//! ## Sections
//! - A write's frame, the writes (conditional ones too) and what is read after their
//!   commit.
//! - Writes sent with an idempotency key, and a key's claim at its home slot.
//! - A transaction's parts.
//! - Transaction control beyond a write's frame: two-phase commit, rollback, a cut's
//!   snapshot.
//! - Reads: the point read, the list ([`list`], in the eight [`ListShape`]s), an
//!   export's page, a replica's replay position.
//! - Health checks and upkeep.

// ---------------------------------------------------------------------------------
// A write's frame: BEGIN, the write, COMMIT, then what the primary says after the commit.

/// Opens a write's transaction.
pub const BEGIN: &str = "BEGIN";

/// Commits it.
pub const COMMIT: &str = "COMMIT";

/// Read after a write's commit: the primary's WAL position (text, for read-your-writes),
/// and in the same statement the shard's cache epoch (int8, NULL without the
/// `cache_epoch` migration; see `cache::epochs`), so the position is past every raise of
/// the epoch the statement sees. Binds nothing.
pub const COMMIT_POSITION: &str =
    "SELECT pg_current_wal_lsn()::text, (SELECT epoch FROM shardgate_cache)";

/// Inserts one record, or replaces its document and slot and gives it a new version; only
/// when this shard owns the slot (`shardgate_claim`: a shared lock a map change waits
/// for, then SG001 if the slot is not this shard's; nothing written).
///
/// Binds: `$1` table, `$2` shard key, `$3` id (text), `$4` slot (int4), `$5` document
/// (jsonb), `$6` the slot again (int4, for the claim). Returns one row: version (int8),
/// created_at, updated_at (timestamptz), inserted (bool).
pub const UPSERT: &str = "INSERT INTO records (table_name, shard_key, id, slot, data) \
     SELECT $1, $2, $3, $4, $5 WHERE (SELECT shardgate_claim($6)) \
     ON CONFLICT (table_name, shard_key, id) DO UPDATE SET data = excluded.data, \
     slot = excluded.slot, version = nextval('record_version_seq'), updated_at = now() \
     RETURNING version, created_at, updated_at, (xmax = 0)";

/// [`UPSERT`] of many records (identities unique within the batch), all or nothing: five
/// arrays, one per column, unnested into rows. One prepared statement whatever the
/// batch's size (a multi-row VALUES list would be parsed and planned anew for each).
///
/// Binds: `$1` tables, `$2` shard keys, `$3` ids (text[]), `$4` slots (int4[]), `$5`
/// documents (jsonb[]), one element per record; `$6` the slots again (int4[]: every
/// slot must be this shard's, or SG001 and nothing written). Returns per record, in no
/// particular order: shard key, id (text), version (int8), created_at, updated_at
/// (timestamptz).
pub const UPSERT_MANY: &str = "INSERT INTO records (table_name, shard_key, id, slot, data) \
     SELECT * FROM unnest($1, $2, $3, $4, $5) AS n (table_name, shard_key, id, slot, data) \
     WHERE (SELECT shardgate_claim($6)) \
     ON CONFLICT (table_name, shard_key, id) DO UPDATE SET data = excluded.data, \
     slot = excluded.slot, version = nextval('record_version_seq'), updated_at = now() \
     RETURNING shard_key, id, version, created_at, updated_at";

/// Deletes one record, its slot claimed as a write's (SG001 if not this shard's).
///
/// Binds: `$1` slot (int4), `$2` table, `$3` shard key, `$4` id (text). Returns the
/// version the deletion took (int8); no row when there was no record.
pub const DELETE: &str = "DELETE FROM records \
     WHERE (SELECT shardgate_claim($1)) AND table_name = $2 AND shard_key = $3 AND id = $4 \
     RETURNING nextval('record_version_seq')";

/// Replaces an existing record's document and slot and gives it a new version, only when
/// its current version meets the condition (`store::Precondition`); never inserts. The
/// record is locked first (`cur`: `FOR UPDATE`, which waits for a concurrent write and
/// then sees its result), and the update checks the version it locked: no other write
/// comes between the check and the change. The slot is claimed as [`UPSERT`]'s (SG001).
///
/// Binds: `$1` table, `$2` shard key, `$3` id (text), `$4` slot (int4), `$5` document
/// (jsonb), `$6` the slot again (int4, for the claim), `$7` any version will do (bool),
/// `$8` the versions that will do otherwise (int8[]). Returns one row: version (int8),
/// created_at, updated_at (timestamptz), NULL when replaced; NULL, NULL, NULL and the
/// record's current version (int8, 0: it does not exist) when the condition failed.
pub const REPLACE_IF: &str = "WITH cur AS (SELECT version FROM records \
     WHERE (SELECT shardgate_claim($6)) AND table_name = $1 AND shard_key = $2 AND id = $3 \
     FOR UPDATE), \
     up AS (UPDATE records r SET data = $5, slot = $4, \
     version = nextval('record_version_seq'), updated_at = now() FROM cur \
     WHERE r.table_name = $1 AND r.shard_key = $2 AND r.id = $3 \
     AND ($7 OR cur.version = ANY($8)) \
     RETURNING r.version, r.created_at, r.updated_at) \
     SELECT version, created_at, updated_at, NULL::int8 FROM up \
     UNION ALL SELECT NULL, NULL, NULL, coalesce((SELECT version FROM cur), 0) \
     WHERE NOT EXISTS (SELECT 1 FROM up)";

/// [`DELETE`], only when the record's current version meets the condition
/// (`store::Precondition`), checked on the record locked as in [`REPLACE_IF`].
///
/// Binds: `$1` slot (int4), `$2` table, `$3` shard key, `$4` id (text), `$5` any version
/// will do (bool), `$6` the versions that will do otherwise (int8[]). Returns one row:
/// the version the deletion took (int8), NULL when deleted; NULL and the record's
/// current version (int8, 0: it does not exist) when the condition failed.
pub const DELETE_IF: &str = "WITH cur AS (SELECT version FROM records \
     WHERE (SELECT shardgate_claim($1)) AND table_name = $2 AND shard_key = $3 AND id = $4 \
     FOR UPDATE), \
     gone AS (DELETE FROM records r USING cur \
     WHERE r.table_name = $2 AND r.shard_key = $3 AND r.id = $4 \
     AND ($5 OR cur.version = ANY($6)) RETURNING nextval('record_version_seq') AS version) \
     SELECT version, NULL::int8 FROM gone \
     UNION ALL SELECT NULL, coalesce((SELECT version FROM cur), 0) \
     WHERE NOT EXISTS (SELECT 1 FROM gone)";

/// A group commit's bound on lock waits, for its own transaction only (see
/// `wire::write::group`). Binds: `$1` the `lock_timeout` setting (text). Returns it.
pub const LOCK_BOUND: &str = "SELECT set_config('lock_timeout', $1, true)";

// ---------------------------------------------------------------------------------
// Writes sent with an idempotency key (`store::idempotent_answer` reads their rows).
//
// Each is one statement of data-modifying CTEs, so one transaction: `prior` finds the
// caller's unexpired entry under the key; the write runs only without one; `kept`
// stores the answer, replacing an expired entry, and raises SG002
// (`shardgate_idempotency_taken`) when another request's entry committed meanwhile.

/// [`UPSERT`] with its answer kept under the key.
///
/// Binds: `$1` caller, `$2` key (text); then [`UPSERT`]'s six from `$3` to `$8`; then the
/// entry's `$9` caller, `$10` key (text), `$11` fingerprint (bytea), `$12` slot (int4 or
/// NULL), `$13` seconds to live (int8). Returns one row: version (int8), created_at,
/// updated_at (timestamptz), created (bool), NULL, NULL when written now; NULLs, then
/// the earlier entry's fingerprint (bytea) and answer (jsonb) when there was one.
pub const UPSERT_IDEMPOTENT: &str = "WITH prior AS (SELECT fingerprint, answer \
     FROM shardgate_idempotency WHERE caller = $1 AND key = $2 AND expires_at > now()), \
     up AS (INSERT INTO records (table_name, shard_key, id, slot, data) \
     SELECT $3, $4, $5, $6, $7 WHERE (SELECT shardgate_claim($8)) \
     AND NOT EXISTS (SELECT 1 FROM prior) \
     ON CONFLICT (table_name, shard_key, id) DO UPDATE SET data = excluded.data, \
     slot = excluded.slot, version = nextval('record_version_seq'), updated_at = now() \
     RETURNING id, version, created_at, updated_at, (xmax = 0) AS created), \
     kept AS (INSERT INTO shardgate_idempotency AS i \
     (caller, key, fingerprint, slot, answer, expires_at) SELECT $9, $10, $11, $12, \
     jsonb_build_object('id', id, 'version', version, 'created', created, \
     'created_at', created_at, 'updated_at', updated_at), \
     now() + $13 * interval '1 second' FROM up \
     ON CONFLICT (caller, key) DO UPDATE SET fingerprint = excluded.fingerprint, \
     slot = excluded.slot, answer = excluded.answer, created_at = now(), \
     expires_at = excluded.expires_at \
     WHERE CASE WHEN i.expires_at <= now() THEN true \
     ELSE shardgate_idempotency_taken() END) \
     SELECT version, created_at, updated_at, created, NULL::bytea, NULL::jsonb FROM up \
     UNION ALL SELECT NULL, NULL, NULL, NULL, fingerprint, answer FROM prior";

/// [`DELETE`] with its answer kept under the key. One claim serves the delete and the
/// entry: a delete of nothing keeps no answer for a slot the shard does not own.
///
/// Binds: `$1` caller, `$2` key (text); then [`DELETE`]'s four from `$3` to `$6`; then
/// the entry's `$7` caller, `$8` key (text), `$9` fingerprint (bytea), `$10` slot (int4
/// or NULL), `$11` seconds to live (int8). Returns one row: the version the deletion
/// took (int8, NULL when there was no record), NULL, NULL; or NULL, then the earlier
/// entry's fingerprint (bytea) and answer (jsonb).
pub const DELETE_IDEMPOTENT: &str = "WITH prior AS (SELECT fingerprint, answer \
     FROM shardgate_idempotency WHERE caller = $1 AND key = $2 AND expires_at > now()), \
     claimed AS (SELECT shardgate_claim($3) AS ok), \
     gone AS (DELETE FROM records WHERE (SELECT ok FROM claimed) \
     AND NOT EXISTS (SELECT 1 FROM prior) AND table_name = $4 AND shard_key = $5 \
     AND id = $6 RETURNING nextval('record_version_seq') AS version), \
     kept AS (INSERT INTO shardgate_idempotency AS i \
     (caller, key, fingerprint, slot, answer, expires_at) SELECT $7, $8, $9, $10, \
     jsonb_build_object('deleted', EXISTS (SELECT 1 FROM gone)), \
     now() + $11 * interval '1 second' \
     WHERE NOT EXISTS (SELECT 1 FROM prior) AND (SELECT ok FROM claimed) \
     ON CONFLICT (caller, key) DO UPDATE SET fingerprint = excluded.fingerprint, \
     slot = excluded.slot, answer = excluded.answer, created_at = now(), \
     expires_at = excluded.expires_at \
     WHERE CASE WHEN i.expires_at <= now() THEN true \
     ELSE shardgate_idempotency_taken() END) \
     SELECT (SELECT version FROM gone), NULL::bytea, NULL::jsonb \
     WHERE NOT EXISTS (SELECT 1 FROM prior) \
     UNION ALL SELECT NULL, fingerprint, answer FROM prior";

/// One shard's group of a bulk write ([`UPSERT_MANY`]) with an entry kept per record
/// (`shardgate_idempotency_records`, each with the record's slot). The records that
/// already have one under the caller's key are not written again and come back with
/// their entry's fingerprint and the version it kept; an entry with another request's
/// fingerprint (the key reused) writes nothing.
///
/// Binds: `$1` fingerprint (bytea), `$2` caller, `$3` key (text), `$4` to `$6` the
/// batch's tables, shard keys and ids (text[]); then [`UPSERT_MANY`]'s six from `$7` to
/// `$12`; then the entries' `$13` caller, `$14` key (text), `$15` fingerprint (bytea),
/// `$16` seconds to live (int8). Returns per record: shard key, id (text), version
/// (int8), then created_at, updated_at (timestamptz) and NULL when written now, or NULL,
/// NULL and the entry's fingerprint (bytea) when an entry was there.
pub const UPSERT_MANY_IDEMPOTENT: &str = "WITH prior AS (SELECT e.table_name, \
     e.shard_key, e.id, e.fingerprint, (e.answer->>'version')::bigint AS version, \
     e.fingerprint <> $1 AS other FROM shardgate_idempotency_records e \
     WHERE e.caller = $2 AND e.key = $3 AND e.expires_at > now() \
     AND (e.table_name, e.shard_key, e.id) IN (SELECT * FROM unnest($4, $5, $6))), \
     up AS (INSERT INTO records (table_name, shard_key, id, slot, data) \
     SELECT * FROM unnest($7, $8, $9, $10, $11) AS n (table_name, shard_key, id, slot, data) \
     WHERE (SELECT shardgate_claim($12)) \
     AND NOT EXISTS (SELECT 1 FROM prior p WHERE p.table_name = n.table_name \
     AND p.shard_key = n.shard_key AND p.id = n.id) \
     AND NOT EXISTS (SELECT 1 FROM prior WHERE other) \
     ON CONFLICT (table_name, shard_key, id) DO UPDATE SET data = excluded.data, \
     slot = excluded.slot, version = nextval('record_version_seq'), updated_at = now() \
     RETURNING table_name, shard_key, id, slot, version, created_at, updated_at), \
     kept AS (INSERT INTO shardgate_idempotency_records AS i \
     (caller, key, table_name, shard_key, id, slot, fingerprint, answer, expires_at) \
     SELECT $13, $14, table_name, shard_key, id, slot, $15, \
     jsonb_build_object('version', version), now() + $16 * interval '1 second' FROM up \
     ON CONFLICT (caller, key, table_name, shard_key, id) DO UPDATE SET \
     slot = excluded.slot, fingerprint = excluded.fingerprint, \
     answer = excluded.answer, created_at = now(), expires_at = excluded.expires_at \
     WHERE CASE WHEN i.expires_at <= now() THEN true \
     ELSE shardgate_idempotency_taken() END) \
     SELECT shard_key, id, version, created_at, updated_at, NULL::bytea FROM up \
     UNION ALL SELECT shard_key, id, version, NULL, NULL, fingerprint FROM prior";

/// A key's claim (migration `idempotency_per_record`), before a write with an
/// `Idempotency-Key`, in its own one-statement transaction on the shard that owns the
/// key's *home slot* (a hash of caller and key: [`crate::store::IdempotencyKey::home_key`]).
/// The claim holds the request's fingerprint, so the same key sent with another request
/// is refused whichever shards the two write to. An expired claim is taken over; an
/// unexpired one is returned as it is (the conflict's `DO UPDATE` locks it and returns
/// its row even when a concurrent request committed it after this statement's
/// snapshot). The home slot is claimed like a record's (SG001 on a shard that does not
/// own it), and the claim carries it, so it moves with the slot.
///
/// Binds: `$1` caller, `$2` key (text), `$3` fingerprint (bytea), `$4` home slot (int4),
/// `$5` seconds to live (int8), `$6` the slot again (int4, for the claim). Returns the
/// fingerprint the key is claimed with (bytea): this request's or an earlier one's.
pub const CLAIM: &str = "INSERT INTO shardgate_idempotency_claims AS c \
     (caller, key, fingerprint, slot, expires_at) SELECT $1, $2, $3, $4, \
     now() + $5 * interval '1 second' WHERE (SELECT shardgate_claim($6)) \
     ON CONFLICT (caller, key) DO UPDATE SET \
     fingerprint = CASE WHEN c.expires_at <= now() THEN excluded.fingerprint \
     ELSE c.fingerprint END, \
     created_at = CASE WHEN c.expires_at <= now() THEN now() ELSE c.created_at END, \
     expires_at = CASE WHEN c.expires_at <= now() THEN excluded.expires_at \
     ELSE c.expires_at END, slot = excluded.slot \
     RETURNING fingerprint";

// ---------------------------------------------------------------------------------
// A transaction's parts (migrations `transactions`, `transaction_idempotency`): the
// shard's SQL functions hold the logic.

/// A part's lock and condition on one record. Binds: `$1` slot (int4), `$2` table, `$3`
/// shard key, `$4` id (text), `$5` the expected version (int8, NULL: no condition), `$6`
/// the operation's position in the request (int4, echoed in the refusal's DETAIL).
/// Returns the record's current version (int8, 0 when absent); SG005 when the condition
/// fails.
pub const TXN_LOCK: &str = "SELECT shardgate_txn_lock($1, $2, $3, $4, $5, $6)";

/// A keyed transaction's check, once the record is locked. Binds: `$1` caller, `$2` key,
/// `$3` table, `$4` shard key, `$5` id (text), `$6` the expected version (int8 or NULL),
/// `$7` the operation's position (int4). Returns the record's version before the write
/// (int8, 0: absent); SG006 when the key's entry for the record exists (applied before),
/// else SG005 when the condition fails.
pub const TXN_SEEN: &str = "SELECT shardgate_txn_seen($1, $2, $3, $4, $5, $6, $7)";

/// A keyed transaction's entry for one record, after its write. Binds: `$1` caller, `$2`
/// key (text), `$3` fingerprint (bytea), `$4` slot (int4), `$5` table, `$6` shard key,
/// `$7` id (text), `$8` seconds to live (int8), `$9` a delete (bool).
pub const TXN_ENTRY: &str = "SELECT shardgate_txn_remember($1, $2, $3, $4, $5, $6, $7, $8, $9)";

// ---------------------------------------------------------------------------------
// Transaction control beyond a write's frame: a transaction part's bound and its
// two-phase commit, the rollback that frees a refused exchange's connection, and the
// snapshot a cut holds. Simple queries with no binds: a name written into a text is
// checked by its caller first (`wire::write::txn::valid_gid`, the snapshot session's
// `valid_export`).

/// Ends the transaction a refused exchange left open, so its connection is idle again
/// (`wire::conn`), or the snapshot a cut's session holds. Returns no row.
pub const ROLLBACK: &str = "ROLLBACK";

/// A part of a transaction on several shards waits at most `ms` milliseconds for each
/// lock, for its own transaction only (`wire::write::txn`). Returns no row.
pub fn part_lock_timeout(ms: u64) -> String {
    format!("SET LOCAL lock_timeout = {ms}")
}

/// Names a part's transaction on several shards (`txid`: hex digits, from its checked
/// gid) for the change log, whose rows of the part carry it. Returns no row.
pub fn name_transaction(txid: &str) -> String {
    format!("SET LOCAL shardgate.txn = '{txid}'")
}

/// Ends a part of a transaction on several shards by preparing it under `gid` (checked):
/// the first phase of its two-phase commit. Returns no row.
pub fn prepare_transaction(gid: &str) -> String {
    format!("PREPARE TRANSACTION '{gid}'")
}

/// Commits the part prepared under `gid` (checked), from any session of its database;
/// outside a transaction block, so sent on its own, with [`COMMIT_POSITION`] behind it.
/// Returns no row; SQLSTATE 42704 when no such prepared transaction exists.
pub fn commit_prepared(gid: &str) -> String {
    format!("COMMIT PREPARED '{gid}'")
}

/// Rolls back the part prepared under `gid` (checked), from any session of its
/// database. Returns no row; SQLSTATE 42704 when no such prepared transaction exists.
pub fn rollback_prepared(gid: &str) -> String {
    format!("ROLLBACK PREPARED '{gid}'")
}

/// Our prepared parts in this database (names `sg_...`), oldest first. Returns per
/// part: its name (text), its age in seconds (float8).
pub const PREPARED_PARTS: &str = "SELECT gid, extract(epoch FROM now() - prepared)::float8 \
     FROM pg_prepared_xacts WHERE database = current_database() AND gid LIKE 'sg\\_%' \
     ORDER BY prepared";

/// Our prepared parts on this server and their transaction ids, read by a cut's session
/// just before it takes its snapshot (`cluster::snapshot::session`). Returns per part:
/// its name, its transaction id (text).
pub const PREPARED_PART_XIDS: &str = "SELECT gid, transaction::text FROM pg_prepared_xacts \
     WHERE database = current_database() AND gid LIKE 'sg\\_%'";

/// Opens a cut's snapshot transaction on one shard. Returns no row.
pub const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

/// Makes the transaction [`BEGIN_SNAPSHOT`] opened read the snapshot another session
/// exported as `exported` (checked), on any gateway. Returns no row.
pub fn set_snapshot(exported: &str) -> String {
    format!("SET TRANSACTION SNAPSHOT '{exported}'")
}

/// Takes the snapshot (a cut's transaction's first statement) and names it. Returns one
/// row: `pg_current_snapshot()` (text: xmin:xmax:xip), the primary's WAL position (text).
pub const TAKE_SNAPSHOT: &str = "SELECT pg_current_snapshot()::text, pg_current_wal_lsn()::text";

/// Exports the transaction's snapshot, so other sessions can read the same cut. Returns
/// one row: the snapshot's name (text).
pub const EXPORT_SNAPSHOT: &str = "SELECT pg_export_snapshot()";

// ---------------------------------------------------------------------------------
// Reads.

/// A point read: one record by its full identity, from a server that serves its slot
/// (`shardgate_serves`: no lock, replicas cannot lock; SG001 otherwise). The hottest
/// statement the gateway sends.
///
/// Binds: `$1` slot (int4), `$2` table, `$3` shard key, `$4` id (text). Returns at most
/// one row, the columns of [`crate::store::Record`] in its field order: table, shard key,
/// id (text), slot (int4), data (jsonb), version (int8), created_at, updated_at
/// (timestamptz).
pub const FIND: &str = "SELECT table_name, shard_key, id, slot, data, version, created_at, \
     updated_at FROM records WHERE (SELECT shardgate_serves($1)) AND table_name = $2 \
     AND shard_key = $3 AND id = $4 LIMIT 1";

/// A replica's replay position (text, NULL on a primary). Binds nothing.
pub const REPLAY_WAL: &str = "SELECT pg_last_wal_replay_lsn()::text";

/// Which of the list statement's shapes a list takes: each is prepared on its own.
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

/// The list statement in one of its shapes: records of one table, newest first in the
/// cursor order (see [`crate::store::cursor`]). Keyed, one shard key's records, from a
/// server that serves its slot (SG001 otherwise); else every key's on this shard whose
/// slot the shard owns (rows left behind on a shard that no longer owns their slot stay
/// hidden).
///
/// Binds, in order: `$1` table (text); when keyed, the slot (int4) and shard key (text);
/// when filtered, the filter (jsonb, matched with `@>`); when after a cursor, its
/// updated_at (timestamptz), shard key and id (text); last, the row limit (int8). Returns
/// the columns of [`crate::store::Record`] in its field order, as [`FIND`] does.
pub fn list(shape: ListShape) -> String {
    const OWNED: &str = "(NOT EXISTS (SELECT 1 FROM shardgate_map) \
         OR slot IN (SELECT slot FROM shardgate_slots))";
    let mut binds = 1;
    let mut next = || {
        binds += 1;
        binds
    };
    let mut conditions = vec!["table_name = $1".to_owned()];
    if shape.keyed {
        conditions.push(format!("(SELECT shardgate_serves(${}))", next()));
        conditions.push(format!("shard_key = ${}", next()));
    } else {
        conditions.push(OWNED.to_owned());
    }
    if shape.filtered {
        conditions.push(format!("data @> ${}", next()));
    }
    if shape.after {
        let (a, b, c) = (next(), next(), next());
        conditions.push(format!("(updated_at, shard_key, id) < (${a}, ${b}, ${c})"));
    }
    let limit = next();
    let filter = conditions.join(" AND ");
    format!(
        "SELECT table_name, shard_key, id, slot, data, version, created_at, updated_at \
         FROM records WHERE {filter} \
         ORDER BY updated_at DESC, shard_key DESC, id DESC LIMIT ${limit}"
    )
}

/// One page of an export: a table's records in keyset order `(shard_key, id)` (unique
/// within a table, and never changed by a write, so a record updated while the export
/// runs neither moves nor repeats), only the slots the shard owns, and in the same
/// statement (one snapshot) what the shard was told of the map, so an export notices a
/// change of ownership between its pages.
///
/// Binds: `$1` table (text), `$2` shard key prefix (text, `''` for every key), `$3` and
/// `$4` the last (shard key, id) exported from this shard (text; `''` and `''` before
/// the first page, which every key sorts after: a key is at least one byte), `$5` the
/// page's row limit (int8).
///
/// Returns: the map version the shard was told (int8, NULL if never told), how many
/// slots it owns (int8), whether the row holds a record (bool), then the columns of
/// [`crate::store::Record`] in its field order. A page without a record is one row with
/// `false` and NULLs, so even the empty last page says what the shard owned.
pub const EXPORT_PAGE: &str = "SELECT (SELECT version FROM shardgate_map), \
     (SELECT count(*) FROM shardgate_slots), r.table_name IS NOT NULL, \
     r.table_name, r.shard_key, r.id, r.slot, r.data, r.version, r.created_at, r.updated_at \
     FROM (SELECT 1) AS one LEFT JOIN LATERAL (\
     SELECT table_name, shard_key, id, slot, data, version, created_at, updated_at \
     FROM records WHERE table_name = $1 AND starts_with(shard_key, $2) \
     AND (shard_key, id) > ($3, $4) \
     AND (NOT EXISTS (SELECT 1 FROM shardgate_map) OR slot IN (SELECT slot FROM shardgate_slots)) \
     ORDER BY shard_key, id LIMIT $5) AS r ON true \
     ORDER BY r.shard_key, r.id";

// ---------------------------------------------------------------------------------
// Health checks and upkeep: simple queries, no parameter, rows read as text.

/// Whether the server is in recovery (bool), where its WAL is (text: the write position
/// on a primary, the replay position on a replica), and whether its new transactions
/// are read-only by default (`default_transaction_read_only`, text: a switchover's
/// drain, or the HA manager's own while it promotes; a primary so set takes no write).
pub const WAL_POSITION: &str = "SELECT pg_is_in_recovery(), (CASE WHEN pg_is_in_recovery() \
     THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text, \
     current_setting('default_transaction_read_only')";

/// [`WAL_POSITION`] and, in the same statement, the shard's cache epoch (int8; a shard
/// without the `cache_epoch` migration refuses it with 42P01).
pub const WAL_POSITION_AND_EPOCH: &str = "SELECT pg_is_in_recovery(), (CASE WHEN \
     pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text, \
     current_setting('default_transaction_read_only'), (SELECT epoch FROM shardgate_cache)";

/// A server's role for the failover watcher: whether it is in recovery (bool) and, when
/// it is not, the timeline it writes on (text: the first 8 hex digits of its current WAL
/// file's name; a promotion always starts a new, higher timeline).
pub const ROLE: &str = "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN NULL \
     ELSE substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) END";

/// Whether a server takes writes now (bool): out of recovery and its transactions not
/// read-only (a primary drained for a switchover, or a promoted standby its HA manager
/// still holds read-only, does not).
pub const TAKES_WRITES: &str =
    "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'";

/// What a connection through a service address reached (`live_map::identity`), in one
/// statement: whether it is in recovery (bool); its timeline (int4: the one it writes on,
/// as [`ROLE`] reads it, current at once after a promotion; a standby's, the one it
/// receives, else its last checkpoint's); its cluster's system identifier (text, NULL
/// without `system`: a role that may not run `pg_control_system()`); the node reached
/// (text, `host:port` as the server sees itself; NULL over a Unix socket); the shard it
/// was told it is (int4, NULL without `told`: a shard before its migrations); whether
/// its transactions are read-only (bool); whether it waits for a synchronous standby
/// (bool). The variants without `system` or `told` are sent after SQLSTATE 42501 or
/// 42P01.
pub fn identity(system: bool, told: bool) -> String {
    let system = match system {
        true => "(pg_control_system()).system_identifier::text",
        false => "NULL::text",
    };
    let told = match told {
        true => "(SELECT shard FROM shardgate_map)",
        false => "NULL::int4",
    };
    format!(
        "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN \
         coalesce((SELECT received_tli FROM pg_stat_wal_receiver), \
         (pg_control_checkpoint()).timeline_id) \
         ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int4 END, \
         {system}, host(inet_server_addr()) || ':' || inet_server_port(), {told}, \
         current_setting('transaction_read_only') = 'on', \
         current_setting('synchronous_standby_names') <> ''"
    )
}

/// Fencing a server that must take no writes (`control_plane::failover::fence`), in one
/// transaction on one connection, each part with the simple protocol: first this, which
/// opens it (its commit waits for no standby: an old primary has none left) and reads,
/// locked, the map version the server was told (int8; no row before `init`)...
pub const FENCE_BEGIN: &str = "BEGIN; SET LOCAL synchronous_commit = local; \
     SELECT version FROM shardgate_map FOR UPDATE";

/// ...then, unless the server was told a newer version than `version` (it is left
/// alone: `ROLLBACK`), this, which takes every owned slot's advisory lock (writes in flight
/// there finish first), empties the slots, tells the server it is `shard` at `version`
/// and commits. Answers two rows: the slots locked (int8), then the slots given up
/// (int8). Both values are numbers written in, never a client's text.
pub fn fence_disown(shard: u32, version: u64) -> String {
    format!(
        "SELECT count(pg_advisory_xact_lock(21319, slot)) FROM \
         (SELECT slot FROM shardgate_slots ORDER BY slot) AS s; \
         WITH gone AS (DELETE FROM shardgate_slots RETURNING 1) SELECT count(*) FROM gone; \
         INSERT INTO shardgate_map (shard, version) VALUES ({shard}, {version}) \
         ON CONFLICT (singleton) DO UPDATE \
         SET shard = excluded.shard, version = excluded.version, updated_at = now(); \
         COMMIT"
    )
}

/// Moves the shard's cache epoch on, in its own transaction; returns the new epoch
/// (int8)...
pub const BUMP_CACHE_EPOCH: &str = "UPDATE shardgate_cache SET epoch = epoch + 1 RETURNING epoch";
/// ...then, sent behind it, the primary's WAL position after that commit (text).
pub const CURRENT_WAL: &str = "SELECT pg_current_wal_lsn()::text";

/// Rows per logical table: table (text), count (int8).
pub const TABLE_COUNTS: &str =
    "SELECT table_name, count(*) FROM records GROUP BY table_name ORDER BY table_name";

/// Bytes on disk of the records table (heap, indexes, TOAST) and of the whole database
/// (int8 each).
pub const DISK_BYTES: &str =
    "SELECT pg_total_relation_size('records'), pg_database_size(current_database())";

/// The versions of the migrations this server has applied (text), from the table the
/// admin CLI's migration runner (diesel's) keeps; 42P01 when it does not exist.
pub const APPLIED_MIGRATIONS: &str = "SELECT version FROM __diesel_schema_migrations";

/// Deletes up to `limit` expired entries of `table` (one of [`crate::store::ENTRY_TABLES`])
/// and answers how many (int8); rows another sweeper holds are skipped, so many gateways
/// sweep side by side.
pub fn purge_expired(table: &str, limit: u32) -> String {
    format!(
        "WITH gone AS (DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} \
         WHERE expires_at <= now() LIMIT {limit} FOR UPDATE SKIP LOCKED)) RETURNING 1) \
         SELECT count(*) FROM gone"
    )
}

// ---------------------------------------------------------------------------------
// The change log (`changes`): read by cut, pruned for retention. Their texts carry
// literals (sent with the simple protocol, rows read as text); a snapshot's text is
// checked before it gets here (`changes::cursor::valid_snapshot`) and the table is a
// configured one.

/// `text` as an SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// One shard's changes of `table` in a cut's delta: the rows whose transaction the
/// cut's snapshot `upto` sees and the snapshot `sent` did not (every row, when `sent`
/// is None), after version `after`, in version order, at most `limit`. Returns per
/// change: version (int8), shard key, id (text), deleted (bool), the document (jsonb
/// text, NULL for a delete), when (ISO 8601 text), the transaction's id (text or NULL).
pub fn changes_page(
    table: &str,
    sent: Option<&str>,
    upto: &str,
    after: Option<i64>,
    limit: usize,
) -> String {
    let upto = literal(upto);
    let since = match sent {
        None => String::new(),
        Some(sent) => {
            let sent = literal(sent);
            format!(
                " AND xid >= pg_snapshot_xmin({sent}::pg_snapshot) \
                 AND NOT pg_visible_in_snapshot(xid, {sent}::pg_snapshot)"
            )
        }
    };
    let after = after.map_or(String::new(), |v| format!(" AND version > {v}"));
    format!(
        "SELECT version, shard_key, id, deleted, data::text, to_json(at) #>> '{{}}', txn \
         FROM shardgate_changes WHERE table_name = {table} \
         AND pg_visible_in_snapshot(xid, {upto}::pg_snapshot){since}{after} \
         ORDER BY version LIMIT {limit}",
        table = literal(table),
    )
}

/// Whether rows a reader at snapshot `sent` has not seen may have been pruned: a
/// transaction it had not seen (at or past its xmax, or in progress in it) that is below
/// the horizon and had finished when the last pruning took its snapshot. Returns one
/// row: gone (bool), the horizon (text).
pub fn changes_gone(sent: &str) -> String {
    format!(
        "SELECT pg_snapshot_xmax(s) < horizon OR EXISTS (SELECT 1 FROM pg_snapshot_xip(s) x \
         WHERE x < horizon AND pg_visible_in_snapshot(x, pruned_at)), horizon::text \
         FROM shardgate_changes_pruned, (SELECT {}::pg_snapshot AS s) sent",
        literal(sent)
    )
}

/// Prunes the change log to `retention_secs`: the rows of transactions older than the
/// oldest transaction of a row younger than that (every row, when none is), at most
/// `limit` of them, and raises the horizon past the newest transaction deleted and
/// records its snapshot, in the same statement (see [`changes_gone`]). A transaction
/// still in progress has no row to delete: its rows wait for a later round, and a
/// reader that had not seen it loses nothing. Returns one row: rows deleted (int8).
pub fn prune_changes(retention_secs: u64, limit: u32) -> String {
    format!(
        "WITH h AS (SELECT min(xid) AS horizon FROM shardgate_changes \
         WHERE at > now() - interval '{retention_secs} seconds'), \
         gone AS (DELETE FROM shardgate_changes WHERE ctid = ANY(ARRAY(SELECT ctid \
         FROM shardgate_changes WHERE (SELECT horizon FROM h) IS NULL \
         OR xid < (SELECT horizon FROM h) LIMIT {limit})) RETURNING xid), \
         past AS (SELECT (max(xid)::text::numeric + 1)::text::xid8 AS horizon FROM gone), \
         raised AS (UPDATE shardgate_changes_pruned p SET horizon = greatest(p.horizon, \
         past.horizon), pruned_at = pg_current_snapshot() FROM past \
         WHERE past.horizon IS NOT NULL RETURNING 1) \
         SELECT count(*) FROM gone"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn the_plainest_list_binds_the_table_and_the_limit() {
        let plain = ListShape {
            keyed: false,
            filtered: false,
            after: false,
        };
        assert_eq!(
            list(plain),
            "SELECT table_name, shard_key, id, slot, data, version, created_at, updated_at \
             FROM records WHERE table_name = $1 AND (NOT EXISTS (SELECT 1 FROM \
             shardgate_map) OR slot IN (SELECT slot FROM shardgate_slots)) \
             ORDER BY updated_at DESC, shard_key DESC, id DESC LIMIT $2"
        );
    }

    #[test]
    fn the_fullest_list_binds_table_key_filter_cursor_and_limit_in_order() {
        let full = ListShape {
            keyed: true,
            filtered: true,
            after: true,
        };
        let text = list(full);
        let filter = "FROM records \
             WHERE table_name = $1 AND (SELECT shardgate_serves($2)) AND shard_key = $3 \
             AND data @> $4 AND (updated_at, shard_key, id) < ($5, $6, $7) ORDER BY";
        assert!(text.contains(filter), "{text}");
        assert!(text.ends_with("DESC LIMIT $8"), "{text}");
    }

    #[test]
    fn every_list_shape_binds_what_it_holds_and_nothing_else() {
        for shape in ListShape::all() {
            let text = list(shape);
            let binds = 2
                + 2 * usize::from(shape.keyed)
                + usize::from(shape.filtered)
                + 3 * usize::from(shape.after);
            assert!(text.ends_with(&format!("LIMIT ${binds}")), "{text}");
            assert!(!text.contains(&format!("${}", binds + 1)), "{text}");
            assert_eq!(text.contains("shardgate_serves($2)"), shape.keyed, "{text}");
            assert_eq!(text.contains("shardgate_slots"), !shape.keyed, "{text}");
            assert_eq!(text.contains("@>"), shape.filtered, "{text}");
            assert_eq!(
                text.contains("(updated_at, shard_key, id) <"),
                shape.after,
                "{text}"
            );
        }
    }

    #[test]
    fn every_upsert_replaces_an_existing_record_alike() {
        let replace =
            "ON CONFLICT (table_name, shard_key, id) DO UPDATE SET data = excluded.data, \
             slot = excluded.slot, version = nextval('record_version_seq'), updated_at = now() \
             RETURNING ";
        for text in [
            UPSERT,
            UPSERT_MANY,
            UPSERT_IDEMPOTENT,
            UPSERT_MANY_IDEMPOTENT,
        ] {
            assert!(text.contains(replace), "{text}");
        }
    }

    #[test]
    fn writes_with_a_key_keep_their_answer_alike() {
        let kept = "ON CONFLICT (caller, key) DO UPDATE SET fingerprint = excluded.fingerprint, \
             slot = excluded.slot, answer = excluded.answer, created_at = now(), \
             expires_at = excluded.expires_at \
             WHERE CASE WHEN i.expires_at <= now() THEN true \
             ELSE shardgate_idempotency_taken() END) ";
        let prior = "WITH prior AS (SELECT fingerprint, answer FROM shardgate_idempotency \
             WHERE caller = $1 AND key = $2 AND expires_at > now()), ";
        for text in [UPSERT_IDEMPOTENT, DELETE_IDEMPOTENT] {
            assert!(text.starts_with(prior), "{text}");
            assert!(text.contains(kept), "{text}");
        }
    }

    #[test]
    fn transaction_control_writes_the_checked_name_into_its_text() {
        assert_eq!(prepare_transaction("sg_1a"), "PREPARE TRANSACTION 'sg_1a'");
        assert_eq!(commit_prepared("sg_1a"), "COMMIT PREPARED 'sg_1a'");
        assert_eq!(rollback_prepared("sg_1a"), "ROLLBACK PREPARED 'sg_1a'");
        assert_eq!(part_lock_timeout(2000), "SET LOCAL lock_timeout = 2000");
        assert_eq!(
            set_snapshot("00000003-0000001B-1"),
            "SET TRANSACTION SNAPSHOT '00000003-0000001B-1'"
        );
        for text in [PREPARED_PARTS, PREPARED_PART_XIDS] {
            assert!(
                text.contains("FROM pg_prepared_xacts WHERE database = current_database() AND gid LIKE 'sg\\_%'"),
                "{text}"
            );
        }
    }

    #[test]
    fn the_sweep_names_its_table_and_limit() {
        let text = purge_expired("shardgate_idempotency", 500);
        assert!(
            text.contains("DELETE FROM shardgate_idempotency WHERE"),
            "{text}"
        );
        assert!(text.contains("LIMIT 500 FOR UPDATE SKIP LOCKED"), "{text}");
    }
}
