//! A shard joining the map gets every recorded index before it takes slots:
//! `shard-admin add-shard` runs [`ready_for_slots`] between the join (the shard in the
//! map, owning none) and its first move. Each pass is [`reconcile`]'s, so a build that
//! a gateway's reconciler holds is waited for rather than run twice; the wait ends when
//! every index on the shard is valid, and a failed or unfinished one is an error that
//! names it, so no slot moves onto a shard its queries would scan.

use std::time::{Duration, Instant};

use shard_manager::config::ClusterSettings;
use shard_manager::ShardId;

use super::reconcile::{list, reconcile};
use super::IndexError;

/// How often the wait looks again.
const POLL: Duration = Duration::from_millis(500);

/// Why a new shard is not ready for slots.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("index {name} failed on {shard}: {reason}")]
    Failed {
        name: String,
        shard: ShardId,
        reason: String,
    },
    #[error("{left} index(es) still building on {shard} after {waited_s} s: {names}")]
    Unfinished {
        shard: ShardId,
        left: usize,
        names: String,
        waited_s: u64,
    },
}

/// Builds every recorded index on `shard` and waits, up to `wait`, until each is
/// valid there. The names of the indexes it holds.
pub async fn ready_for_slots(
    settings: &ClusterSettings,
    shard: ShardId,
    wait: Duration,
) -> Result<Vec<String>, NotReady> {
    let started = Instant::now();
    loop {
        reconcile(settings).await?;
        let mut valid = Vec::new();
        let mut building = Vec::new();
        for view in list(settings, None).await? {
            if view.state == "dropping" {
                continue;
            }
            let here = view.shards.iter().find(|s| s.shard == shard.0);
            match here.map(|s| (s.state.as_str(), s.error.clone())) {
                Some(("valid", _)) => valid.push(view.name),
                Some(("failed", error)) => {
                    return Err(NotReady::Failed {
                        name: view.name,
                        shard,
                        reason: error.unwrap_or_else(|| "no reason recorded".into()),
                    })
                }
                _ => building.push(view.name),
            }
        }
        if building.is_empty() {
            return Ok(valid);
        }
        if started.elapsed() >= wait {
            return Err(NotReady::Unfinished {
                shard,
                left: building.len(),
                names: building.join(", "),
                waited_s: started.elapsed().as_secs(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}
