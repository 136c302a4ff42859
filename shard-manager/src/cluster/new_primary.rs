//! A request whose shard's primary could not take it (down, or read-only after a
//! demotion), with nothing sent: it waits, up to `failover.write_wait_ms`, for the map
//! to name another primary for the shard (the failover watcher records a promotion;
//! every gateway follows the map), then is tried once more there. Past the bound the
//! first failure is answered (503 naming the shard, with `Retry-After`).

use std::time::Duration;

use super::Cluster;
use crate::error::retry::{policy, Retry, Work};
use crate::error::ClusterError;

/// How often the wait looks at the shard's primary again.
const LOOK_EVERY: Duration = Duration::from_millis(20);

impl Cluster {
    /// Whether the shard of `error` has a new primary to try `work` on: only when the
    /// retry policy says so and one came within the bound.
    pub(super) async fn new_primary(&self, error: &ClusterError, work: Work) -> bool {
        let Some((shard, lost, cause)) = error.primary_lost() else {
            return false;
        };
        if policy(cause, work) != Retry::OnNewPrimaryOnce {
            return false;
        }
        let bound = self.settings.failover.write_wait();
        if bound.is_zero() {
            return false;
        }
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            if let Some(now) = self.shards.get(shard).map(|s| s.primary.addr.clone()) {
                if now != lost {
                    tracing::info!(%shard, from = %lost, to = %now, "retrying on the shard's new primary");
                    return true;
                }
            }
            if tokio::time::Instant::now() + LOOK_EVERY > deadline {
                return false;
            }
            tokio::time::sleep(LOOK_EVERY).await;
        }
    }
}
