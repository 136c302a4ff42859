//! Expired idempotency entries swept away in the background: every interval, each
//! shard whose primary is up deletes its expired entries in batches, and prunes its
//! change log to the retention (`shard_manager::changes::retention`). An expired entry
//! is already ignored by writes (and replaced by a new one under its key); sweeping
//! only bounds the table. Many gateways sweep side by side without waiting on each
//! other (`SKIP LOCKED`).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use shard_manager::cluster::Cluster;
use shard_manager::wire::upkeep;

/// Entries deleted per statement.
const BATCH: u32 = 5_000;
/// Statements per shard per round: a backlog is cleared over several rounds.
const ROUNDS: usize = 20;

/// The running sweeper. Dropping it stops the task.
pub struct Sweeper {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sweeper {
    /// Sweeps every `every`, first after one interval, keeping `changes_retention` of
    /// each shard's change log. Must be called inside a runtime.
    pub fn spawn(cluster: Arc<Cluster>, every: Duration, changes_retention: Duration) -> Self {
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                sweep(&cluster).await;
                cluster.prune_changes(changes_retention).await;
            }
        });
        Self { task }
    }
}

/// One round over every shard; the entries deleted on each.
pub async fn sweep(cluster: &Cluster) -> Vec<usize> {
    let all = cluster.shards();
    let shards = all.iter().map(|shard| async move {
        let mut deleted = 0;
        for _ in 0..ROUNDS {
            let round = shard
                .primary
                .run(async |conn| upkeep::purge_expired(conn, BATCH).await)
                .await;
            match round {
                Ok(n) => {
                    deleted += n;
                    if n < BATCH as usize {
                        break;
                    }
                }
                Err(e) => {
                    tracing::debug!(shard = %shard.id, error = %e, "idempotency sweep skipped");
                    break;
                }
            }
        }
        if deleted > 0 {
            tracing::info!(shard = %shard.id, deleted, "expired idempotency entries swept");
        }
        deleted
    });
    join_all(shards).await
}
