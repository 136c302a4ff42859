//! Idempotency entries (`shardgate_idempotency`, the answers of writes sent with an
//! `Idempotency-Key`) move with their slots: copied to the target under the fence, after
//! the last changes and before the target takes the slots, so a retry that arrives after
//! the switch finds its answer on the new owner and writes nothing again. The source's
//! go with its rows at cleaning; an aborted move's copies go with the target's rows.
//!
//! Where both shards hold an entry under one caller's key, the newer one is kept (an
//! entry from an earlier, aborted move is older than the source's).

use super::shard_conn::ShardConn;
use super::MoveError;

/// Copies the unexpired entries of `slots` from the source to the target; how many.
pub async fn copy(source: &ShardConn, target: &ShardConn, slots: &[i32]) -> Result<u64, MoveError> {
    let rows = source
        .client
        .query(
            "SELECT caller, key, encode(fingerprint, 'hex'), slot, answer::text, \
             created_at::text, expires_at::text FROM shardgate_idempotency \
             WHERE slot = ANY($1) AND expires_at > now()",
            &[&slots],
        )
        .await
        .map_err(source.fail("reading idempotency entries"))?;
    if rows.is_empty() {
        return Ok(0);
    }
    let text = |i: usize| -> Vec<String> { rows.iter().map(|r| r.get(i)).collect() };
    let slot: Vec<i32> = rows.iter().map(|r| r.get(3)).collect();
    let copied = target
        .client
        .execute(
            "INSERT INTO shardgate_idempotency AS i \
             (caller, key, fingerprint, slot, answer, created_at, expires_at) \
             SELECT c, k, decode(f, 'hex'), s, a::jsonb, ca::timestamptz, ea::timestamptz \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], \
             $6::text[], $7::text[]) AS e(c, k, f, s, a, ca, ea) \
             ON CONFLICT (caller, key) DO UPDATE SET fingerprint = excluded.fingerprint, \
             slot = excluded.slot, answer = excluded.answer, \
             created_at = excluded.created_at, expires_at = excluded.expires_at \
             WHERE i.created_at < excluded.created_at",
            &[
                &text(0),
                &text(1),
                &text(2),
                &slot,
                &text(4),
                &text(5),
                &text(6),
            ],
        )
        .await
        .map_err(target.fail("copying idempotency entries"))?;
    Ok(copied)
}

/// Deletes the entries of `slots` on this primary (with its rows of them).
pub async fn delete(conn: &ShardConn, slots: &[i32]) -> Result<u64, MoveError> {
    conn.client
        .execute(
            "DELETE FROM shardgate_idempotency WHERE slot = ANY($1)",
            &[&slots],
        )
        .await
        .map_err(conn.fail("deleting moved idempotency entries"))
}
