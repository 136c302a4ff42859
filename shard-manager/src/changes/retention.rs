//! Retention of the change log: each shard's rows older than the retention are deleted
//! in batches, and in the same statement the shard's horizon is raised past the newest
//! transaction deleted, so a reader whose position is older is answered "gone"
//! ([`super::ChangesError::Gone`]) rather than shown a gap, and one for which nothing
//! was deleted goes on.

use std::time::Duration;

use futures_util::future::join_all;

use crate::cluster::Cluster;
use crate::store::statements::prune_changes;
use crate::wire::{WireConn, WireError};

/// Rows deleted per statement.
const BATCH: u32 = 5_000;
/// Statements per shard per round: a backlog is cleared over several rounds.
const ROUNDS: usize = 20;

impl Cluster {
    /// One round of retention over every shard whose primary answers: rows deleted on
    /// each (a shard that failed counts 0 and is logged at debug).
    pub async fn prune_changes(&self, retention: Duration) -> Vec<usize> {
        let secs = retention.as_secs();
        let all = self.shards();
        let shards = all.iter().map(|shard| {
            async move {
                let mut deleted = 0;
                for _ in 0..ROUNDS {
                    let round = shard
                        .primary
                        .run(async move |conn| prune(conn, secs).await)
                        .await;
                    let n = match round {
                        Ok(n) => n,
                        Err(e) => {
                            tracing::debug!(shard = %shard.id, error = %e, "change log retention skipped");
                            break;
                        }
                    };
                    deleted += n;
                    if n < BATCH as usize {
                        break;
                    }
                }
                if deleted > 0 {
                    tracing::info!(shard = %shard.id, deleted, "changes past retention pruned");
                }
                deleted
            }
        });
        join_all(shards).await
    }
}

/// One batch of [`prune_changes`] on `conn`: rows deleted.
async fn prune(conn: &mut WireConn, retention_secs: u64) -> Result<usize, WireError> {
    let statement = prune_changes(retention_secs, BATCH);
    let answers = conn.query_text("prune_changes", &[&statement]).await?;
    answers
        .first()
        .and_then(|rows| rows.first())
        .and_then(|row| row.first().cloned().flatten())
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(|| WireError::Protocol("the change log's pruning answered no count".into()))
}
