//! The list statement's builder (rendered to text once for the wire client), and the
//! text of the statements health checks and upkeep send (`crate::wire::upkeep`): they
//! take no parameter from a request, and run with the simple protocol.

use diesel::dsl::sql;
use diesel::pg::Pg;
use diesel::query_builder::QueryFragment;
use diesel::sql_types::{Bool, Text, Timestamptz};
use diesel::{ExpressionMethods, PgJsonbExpressionMethods, QueryDsl, SelectableHelper};

use super::expressions::{OwnedRow, Serves};
use super::schema::records;
use crate::store::cursor::ListQuery;
use crate::store::row::Record;

/// The list statement: records of one table, newest first in the cursor order (see
/// [`crate::store::cursor`]): one shard key's (with its slot, which the server must serve) when
/// `key` is given, else every key's on this shard whose slot the shard owns. Rendered
/// for the wire client (`statement_text`), one prepared variant per shape (keyed or
/// not, filtered or not, after a cursor or not). Binds, in order: table; slot and shard
/// key when keyed; the filter (jsonb) when filtered; the cursor's updated_at, shard key
/// and id when after one; the limit (int8).
pub(in crate::store) fn list_statement<'a>(
    table: &'a str,
    key: Option<(&'a str, i32)>,
    q: &'a ListQuery,
) -> Box<dyn QueryFragment<Pg> + 'a> {
    let mut query = records::table
        .filter(records::table_name.eq(table))
        .into_boxed();
    match key {
        Some((k, slot)) => {
            query = query.filter(Serves(slot)).filter(records::shard_key.eq(k));
        }
        None => query = query.filter(OwnedRow),
    }
    if let Some(filter) = &q.filter {
        query = query.filter(records::data.contains(filter));
    }
    if let Some(c) = &q.after {
        query = query.filter(
            sql::<Bool>("(updated_at, shard_key, id) < (")
                .bind::<Timestamptz, _>(c.updated_at)
                .sql(", ")
                .bind::<Text, _>(&c.shard_key)
                .sql(", ")
                .bind::<Text, _>(&c.id)
                .sql(")"),
        );
    }
    Box::new(
        query
            .order((
                records::updated_at.desc(),
                records::shard_key.desc(),
                records::id.desc(),
            ))
            .limit(i64::from(q.limit))
            .select(Record::as_select()),
    )
}

/// Whether the server is in recovery, where its WAL is (the write position on a
/// primary, the replay position on a replica), and whether its new transactions are
/// read-only by default (`default_transaction_read_only`: a switchover's drain, or the
/// HA manager's own while it promotes; a primary so set takes no write).
pub const WAL_POSITION: &str = "SELECT pg_is_in_recovery(), (CASE WHEN pg_is_in_recovery() \
     THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text, \
     current_setting('default_transaction_read_only')";

/// A server's role for the failover watcher: whether it is in recovery and, when it
/// is not, the timeline it writes on (the first 8 hex digits of its current WAL file's
/// name; a promotion always starts a new, higher timeline).
pub const ROLE: &str = "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN NULL \
     ELSE substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) END";

/// Whether a server takes writes now: out of recovery and its transactions not
/// read-only (a primary drained for a switchover, or a promoted standby its HA manager
/// still holds read-only, does not).
pub const TAKES_WRITES: &str =
    "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'";

/// [`WAL_POSITION`] and, in the same statement, the shard's cache epoch (a shard
/// without the `cache_epoch` migration refuses it with 42P01).
pub const WAL_POSITION_AND_EPOCH: &str = "SELECT pg_is_in_recovery(), (CASE WHEN \
     pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text, \
     current_setting('default_transaction_read_only'), (SELECT epoch FROM shardgate_cache)";

/// Moves the shard's cache epoch on (its own transaction)...
pub const BUMP_CACHE_EPOCH: &str = "UPDATE shardgate_cache SET epoch = epoch + 1 RETURNING epoch";
/// ...then, sent behind it, the primary's WAL position after that commit.
pub const CURRENT_WAL: &str = "SELECT pg_current_wal_lsn()::text";

/// Rows per logical table.
pub const TABLE_COUNTS: &str =
    "SELECT table_name, count(*) FROM records GROUP BY table_name ORDER BY table_name";

/// Bytes on disk of the records table (heap, indexes, TOAST) and of the whole database.
pub const DISK_BYTES: &str =
    "SELECT pg_total_relation_size('records'), pg_database_size(current_database())";

/// The migrations this server has applied (42P01 when diesel's table does not exist).
pub const APPLIED_MIGRATIONS: &str = "SELECT version FROM __diesel_schema_migrations";

/// Deletes up to `limit` expired entries of `table` (one of [`crate::store::ENTRY_TABLES`])
/// and answers how many; rows another sweeper holds are skipped, so many gateways sweep
/// side by side.
pub fn purge_expired(table: &str, limit: u32) -> String {
    format!(
        "WITH gone AS (DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} \
         WHERE expires_at <= now() LIMIT {limit} FOR UPDATE SKIP LOCKED)) RETURNING 1) \
         SELECT count(*) FROM gone"
    )
}
