//! The bulk copy: a group of slots' rows streamed from the source to the target as
//! binary COPY (the bytes pass through untouched), in one target transaction that
//! first deletes what an earlier, interrupted copy of the group left. The copy waits
//! while a replica of the target lags more than `replication.max_lag_bytes` behind.

use std::time::{Duration, Instant};

use super::shard_conn::{pipe, sql_list, ShardConn, COLUMNS};
use super::MoveError;

/// Copies every row of `slots` from `source` to `target`; returns the rows copied.
/// The rows changed meanwhile are in the source's change log (the capture started
/// before), so the copy needs no snapshot shared with anything else.
pub async fn group(
    source: &ShardConn,
    target: &ShardConn,
    slots: &[i32],
) -> Result<u64, MoveError> {
    let list = sql_list(slots);
    let fail = target.fail("copying rows in");
    target.client.simple_query("BEGIN").await.map_err(&fail)?;
    let copied = async {
        target
            .client
            .execute(&format!("DELETE FROM records WHERE slot IN ({list})"), &[])
            .await
            .map_err(&fail)?;
        pipe(
            source,
            target,
            &format!("SELECT {COLUMNS} FROM records WHERE slot IN ({list})"),
        )
        .await
    }
    .await;
    match copied {
        Ok(rows) => {
            target.client.simple_query("COMMIT").await.map_err(&fail)?;
            Ok(rows)
        }
        Err(e) => {
            let _ = target.client.simple_query("ROLLBACK").await;
            Err(e)
        }
    }
}

/// Keeps the target's version sequence ahead of every version copied, so a write there
/// after the switch gets a version greater than the row it replaces.
pub async fn align_versions(source: &ShardConn, target: &ShardConn) -> Result<(), MoveError> {
    let high: i64 = source
        .client
        .query_one("SELECT last_value FROM record_version_seq", &[])
        .await
        .map_err(source.fail("reading the version sequence"))?
        .get(0);
    target
        .client
        .execute(
            "SELECT setval('record_version_seq', greatest($1, (SELECT last_value FROM record_version_seq)))",
            &[&high],
        )
        .await
        .map_err(target.fail("advancing the version sequence"))?;
    Ok(())
}

/// The largest replay lag (bytes) among the target's streaming replicas (0 with none).
pub async fn replica_lag(target: &ShardConn) -> Result<i64, MoveError> {
    let row = target
        .client
        .query_one(
            "SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)::bigint
               FROM pg_stat_replication",
            &[],
        )
        .await
        .map_err(target.fail("reading replica lag"))?;
    Ok(row.get(0))
}

/// Waits while the target's replicas lag more than `limit` bytes (at most `patience`,
/// then copies on: a replica that never catches up must not stall a move forever; the
/// gateway already stops reading from it). Returns how long it waited.
pub async fn throttle(
    target: &ShardConn,
    limit: u64,
    patience: Duration,
) -> Result<Duration, MoveError> {
    let started = Instant::now();
    while replica_lag(target).await? > limit as i64 && started.elapsed() < patience {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(started.elapsed())
}
