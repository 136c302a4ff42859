//! Idempotency entries (the answers of writes sent with an `Idempotency-Key`, the
//! entries of a bulk write's records, and the keys' claims: `store::ENTRY_TABLES`) move
//! with their slots: copied to the target under the fence, after the last changes and
//! before the target takes the slots, so a retry that arrives after the switch finds
//! its answer (or its key's claim) on the new owner and writes nothing again. The
//! source's go with its rows at cleaning; an aborted move's copies go with the target's
//! rows. Every entry carries a slot, so remove-shard (moves of all its slots) keeps them.
//!
//! Where both shards hold an entry under the same key, the newer one is kept (an entry
//! from an earlier, aborted move is older than the source's).

use super::shard_conn::ShardConn;
use super::MoveError;

/// Each table of entries: its name, its primary key, the columns a newer copy replaces.
const TABLES: [(&str, &str, &[&str]); 3] = [
    (
        "shardgate_idempotency",
        "caller, key",
        &["fingerprint", "slot", "answer", "created_at", "expires_at"],
    ),
    (
        "shardgate_idempotency_records",
        "caller, key, table_name, shard_key, id",
        &["slot", "fingerprint", "answer", "created_at", "expires_at"],
    ),
    (
        "shardgate_idempotency_claims",
        "caller, key",
        &["fingerprint", "slot", "created_at", "expires_at"],
    ),
];

/// Slots copied per statement: bounds what one copy holds in memory.
const SLOTS_AT_ONCE: usize = 16;

/// Copies the unexpired entries of `slots` from the source to the target; how many.
pub async fn copy(source: &ShardConn, target: &ShardConn, slots: &[i32]) -> Result<u64, MoveError> {
    let mut copied = 0;
    for (table, key, columns) in TABLES {
        let replace: Vec<String> = columns
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        let read = format!(
            "SELECT count(*), coalesce(json_agg(e), '[]')::text FROM {table} e \
             WHERE slot = ANY($1) AND expires_at > now()"
        );
        let write = format!(
            "INSERT INTO {table} AS i SELECT * FROM jsonb_populate_recordset(NULL::{table}, \
             $1::text::jsonb) ON CONFLICT ({key}) DO UPDATE SET {} \
             WHERE i.created_at < excluded.created_at",
            replace.join(", ")
        );
        for some in slots.chunks(SLOTS_AT_ONCE) {
            let row = source
                .client
                .query_one(&read, &[&some])
                .await
                .map_err(source.fail("reading idempotency entries"))?;
            if row.get::<_, i64>(0) == 0 {
                continue;
            }
            let entries: String = row.get(1);
            copied += target
                .client
                .execute(&write, &[&entries])
                .await
                .map_err(target.fail("copying idempotency entries"))?;
        }
    }
    Ok(copied)
}

/// Deletes the entries of `slots` on this primary (with its rows of them).
pub async fn delete(conn: &ShardConn, slots: &[i32]) -> Result<u64, MoveError> {
    let mut deleted = 0;
    for (table, _, _) in TABLES {
        deleted += conn
            .client
            .execute(
                &format!("DELETE FROM {table} WHERE slot = ANY($1)"),
                &[&slots],
            )
            .await
            .map_err(conn.fail("deleting moved idempotency entries"))?;
    }
    Ok(deleted)
}
