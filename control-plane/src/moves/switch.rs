//! The fence: the slots change hands while writes to them wait.
//!
//! One source transaction takes the slots' write locks exclusively (every write in
//! flight on them has committed; new ones wait), replays the last logged changes,
//! verifies source against target, tells the target it owns the slots, drops them on
//! the source with the next map version, raises the source's cache epoch, and commits.
//! Writes that waited are then refused by the source (SG001 carrying the next version),
//! and their gateway waits for that version, stored in the metadata database once the
//! caches have been told that the source's old epoch is retired. A mover killed in
//! between leaves the source owning all of the slots (nothing switched: the target is
//! told the stored map again) or none (the switch happened: the map is stored).

use std::time::Instant;

use tokio_postgres::Client;
use tracing::Instrument;

use super::fault::fault;
use super::replay::SlotLog;
use super::shard_conn::ShardConn;
use super::state::{ranges, Move};
use super::{caches, copy, idempotency_entries, spans, verify, MoveError};
use crate::jobs::replay::drain;
use crate::map::{meta, ownership, ShardMap};
use shard_manager::config::ClusterSettings;
use shard_manager::routing::{MapVersion, ShardId};

/// The stored map with the move's slots given to its target, one version on.
pub fn next_map(stored: &ShardMap, mv: &Move) -> Result<ShardMap, MoveError> {
    let mut next = stored.clone();
    for slot in &mv.detail.slots {
        let owner = stored.owners.get(*slot as usize).copied();
        if owner != Some(mv.detail.source) && owner != Some(mv.detail.target) {
            return Err(MoveError::Refused(format!(
                "slot {slot} now belongs to {}: the map changed under move {}; abort it",
                owner.map_or("nobody".into(), |o| o.to_string()),
                mv.id
            )));
        }
        next.owners[*slot as usize] = mv.detail.target;
    }
    next.version = MapVersion(stored.version.0 + 1);
    Ok(next)
}

/// How many of the slots the source still owns (its `shardgate_slots`).
pub async fn source_owns(source: &ShardConn, slots: &[i32]) -> Result<usize, MoveError> {
    let row = source
        .client
        .query_one(
            "SELECT count(*) FROM shardgate_slots WHERE slot = ANY($1)",
            &[&slots],
        )
        .await
        .map_err(source.fail("reading the slots it owns"))?;
    Ok(row.get::<_, i64>(0) as usize)
}

/// Where the fence's time went, in milliseconds from the locks asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct FenceTimes {
    pub locked: u128,
    pub drained: u128,
    pub verified: u128,
    pub told: u128,
    pub committed: u128,
    pub retired: u128,
    pub stored: u128,
}

impl FenceTimes {
    /// From the locks asked for to the next map stored: how long writes waited at most.
    pub fn total_ms(&self) -> i64 {
        self.stored as i64
    }
}

impl std::fmt::Display for FenceTimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "writes waited {} ms (locks at {} ms, last changes at {}, verified at {}, target told at {}, source committed at {}, caches told at {}, map stored at {})",
            self.stored, self.locked, self.drained, self.verified, self.told, self.committed, self.retired, self.stored
        )
    }
}

/// Runs the fence for `mv` against the `stored` map; where its time went.
pub async fn run(
    settings: &ClusterSettings,
    meta_client: &mut Client,
    (source, target): (&ShardConn, &ShardConn),
    mv: &Move,
    stored: &ShardMap,
) -> Result<FenceTimes, MoveError> {
    let next = next_map(stored, mv)?;
    let fail = source.fail("switching");
    source.client.simple_query("BEGIN").await.map_err(&fail)?;
    let fenced = Instant::now();
    let mut times = FenceTimes::default();
    let switched = fence(source, target, mv, &next, (fenced, &mut times)).await;
    let epoch = match switched {
        Ok(epoch) => epoch,
        Err(e) => {
            let _ = source.client.simple_query("ROLLBACK").await;
            // The target may have been told: it owns nothing it was not given before.
            let _ = ownership::tell_on(&target.client, stored, target.shard).await;
            return Err(e);
        }
    };
    fault("switch-before-commit");
    source.client.simple_query("COMMIT").await.map_err(&fail)?;
    times.committed = fenced.elapsed().as_millis();
    fault("switch-after-source");
    // No write to the slots is acknowledged on the target before the next map is
    // stored: the caches hear first that the source's old entries are retired.
    caches::retire(settings, meta_client, source.shard, epoch).await?;
    times.retired = fenced.elapsed().as_millis();
    store_next(meta_client, stored, &next, mv).await?;
    times.stored = fenced.elapsed().as_millis();
    Ok(times)
}

/// Inside the source's transaction: locks, last changes, verification, ownership, and
/// the source's cache epoch raised (the new epoch).
async fn fence(
    source: &ShardConn,
    target: &ShardConn,
    mv: &Move,
    next: &ShardMap,
    (fenced, times): (Instant, &mut FenceTimes),
) -> Result<u64, MoveError> {
    let fail = source.fail("fencing the slots");
    source
        .client
        .execute(
            "SELECT pg_advisory_xact_lock(21319, s) FROM (SELECT unnest($1::int[]) AS s ORDER BY 1) AS ordered",
            &[&mv.detail.slots],
        )
        .await
        .map_err(&fail)?;
    times.locked = fenced.elapsed().as_millis();
    let id = mv.id;
    drain(&mut SlotLog { source, target, id }, 5000).await?;
    times.drained = fenced.elapsed().as_millis();
    let checking = spans::verify();
    let (rows, differences) = verify::compare(source, target, &mv.detail.slots)
        .instrument(checking.clone())
        .await?;
    checking.record("shardgate.rows_checked", rows);
    checking.record("shardgate.slots_differing", differences.len());
    if !differences.is_empty() {
        checking.record("otel.status_code", "ERROR");
    }
    drop(checking);
    times.verified = fenced.elapsed().as_millis();
    if !differences.is_empty() {
        let shown: Vec<&str> = differences.iter().take(5).map(String::as_str).collect();
        return Err(MoveError::Verify(format!(
            "{} of {} slot(s) differ ({} rows checked): {}",
            differences.len(),
            mv.detail.slots.len(),
            rows,
            shown.join("; ")
        )));
    }
    copy::align_versions(source, target).await?;
    idempotency_entries::copy(source, target, &mv.detail.slots).await?;
    fault("switch-before-tell");
    ownership::tell_on(&target.client, next, target.shard)
        .await
        .map_err(target.fail("taking the slots"))?;
    times.told = fenced.elapsed().as_millis();
    fault("switch-after-tell");
    source
        .client
        .execute(
            "DELETE FROM shardgate_slots WHERE slot = ANY($1)",
            &[&mv.detail.slots],
        )
        .await
        .map_err(&fail)?;
    source
        .client
        .execute(
            "UPDATE shardgate_map SET version = $1, updated_at = now()",
            &[&(next.version.0 as i64)],
        )
        .await
        .map_err(&fail)?;
    source
        .client
        .execute("DELETE FROM shardgate_moving WHERE move = $1", &[&mv.id])
        .await
        .map_err(&fail)?;
    caches::raise(source).await
}

/// Stores the next map (the source already dropped the slots).
pub async fn store_next(
    meta_client: &mut Client,
    stored: &ShardMap,
    next: &ShardMap,
    mv: &Move,
) -> Result<(), MoveError> {
    let moved: Vec<(u32, ShardId)> = mv
        .detail
        .slots
        .iter()
        .map(|s| (*s as u32, mv.detail.target))
        .collect();
    let summary = format!(
        "{} slot(s) {} moved with their rows from {} to {} (move {})",
        mv.detail.slots.len(),
        ranges(&mv.detail.slots),
        mv.detail.source,
        mv.detail.target,
        mv.id
    );
    let detail = serde_json::json!({ "move": mv.id, "slots": mv.detail.slots, "from": mv.detail.source.0, "to": mv.detail.target.0 });
    meta::commit(
        meta_client,
        stored.version,
        next,
        &moved,
        (&meta::actor(), &mv.detail.kind, &summary, detail),
    )
    .await?;
    Ok(())
}
