//! The recovery every gateway runs: each interval it lists our prepared transactions
//! (`sg_` names) on every primary and resolves those older than the bound by the
//! coordinator log: `COMMIT PREPARED` where `commit` is logged, `ROLLBACK PREPARED`
//! where `abort` is; where nothing is logged it logs `abort` first (a coordinator still
//! alive then reads `abort` back and rolls back too) and follows what stands. Younger
//! parts are left to their coordinator. What it saw goes to `Cluster::in_doubt`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use shard_manager::cluster::txn::gid;
use shard_manager::cluster::txn::log::{Decision, DecisionLog};
use shard_manager::cluster::Cluster;
use shard_manager::routing::ShardId;
use shard_manager::wire::write::txn as wire;

/// The running recovery. Dropping it stops the task.
pub struct Recovery {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recovery {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A prepared part one round saw.
#[derive(Debug, Clone)]
struct Seen {
    shard: ShardId,
    gid: String,
    txid: String,
    age: Duration,
}

impl Recovery {
    /// Runs a round every `every`. Must be called inside a runtime.
    pub fn spawn(
        cluster: Arc<Cluster>,
        log: Arc<dyn DecisionLog>,
        every: Duration,
        bound: Duration,
    ) -> Self {
        let task = tokio::spawn(async move {
            // The first round one interval after the start, not at once: a gateway's
            // first requests need the pooled connections more (a pool of two, taken by
            // the health checks and this, left a first write saturated).
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                round(&cluster, log.as_ref(), bound).await;
            }
        });
        Self { task }
    }
}

/// One round over every shard; how many parts it resolved.
pub async fn round(cluster: &Cluster, log: &dyn DecisionLog, bound: Duration) -> usize {
    let seen = list(cluster).await;
    let old: Vec<&Seen> = seen.iter().filter(|s| s.age > bound).collect();
    let mut resolved = BTreeSet::new();
    if !old.is_empty() {
        let txids: Vec<String> = old
            .iter()
            .map(|s| s.txid.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        match log.decisions(&txids).await {
            Ok(mut decided) => {
                for txid in &txids {
                    if decided.contains_key(txid) {
                        continue;
                    }
                    let shards: Vec<ShardId> = old
                        .iter()
                        .filter(|s| &s.txid == txid)
                        .map(|s| s.shard)
                        .collect();
                    match log.settle(txid, Decision::Abort, &shards).await {
                        Ok(d) => {
                            decided.insert(txid.clone(), d);
                        }
                        Err(e) => {
                            tracing::warn!(%txid, error = %e, "in-doubt transaction not decided")
                        }
                    }
                }
                resolved = resolve(cluster, &old, &decided).await;
                for txid in &txids {
                    let left = seen
                        .iter()
                        .any(|s| &s.txid == txid && !resolved.contains(&s.gid));
                    if !left {
                        let _ = log.finished(txid).await;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, in_doubt = old.len(), "coordinator log unreadable: prepared transactions wait")
            }
        }
    }
    let left: Vec<&Seen> = seen.iter().filter(|s| !resolved.contains(&s.gid)).collect();
    let oldest = left.iter().map(|s| s.age).max().unwrap_or_default();
    cluster.in_doubt().note(
        left.len() as u64,
        oldest.as_millis() as u64,
        resolved.len() as u64,
    );
    resolved.len()
}

/// Our prepared parts on every primary that answers.
async fn list(cluster: &Cluster) -> Vec<Seen> {
    let all = cluster.shards();
    let lists = all.iter().map(|shard| async move {
        match shard
            .primary
            .run(async |conn| wire::prepared(conn).await)
            .await
        {
            Ok(found) => found
                .into_iter()
                .filter_map(|(name, age)| {
                    let (txid, _) = gid::parse(&name)?;
                    Some(Seen {
                        shard: shard.id,
                        gid: name,
                        txid,
                        age: Duration::from_secs_f64(age.max(0.0)),
                    })
                })
                .collect(),
            Err(e) => {
                tracing::debug!(shard = %shard.id, error = %e, "prepared transactions not listed");
                Vec::new()
            }
        }
    });
    join_all(lists).await.into_iter().flatten().collect()
}

/// Applies each part's decision; the names resolved (or found gone).
async fn resolve(
    cluster: &Cluster,
    parts: &[&Seen],
    decided: &HashMap<String, Decision>,
) -> BTreeSet<String> {
    let runs = parts.iter().filter_map(|part| {
        let decision = *decided.get(&part.txid)?;
        let shard = cluster.shard(part.shard).ok()?;
        Some(async move {
            let name = part.gid.as_str();
            let done = match decision {
                Decision::Commit => shard
                    .primary
                    .run_write(async |c| wire::commit_prepared(c, name).await)
                    .await
                    .map(|_| ()),
                Decision::Abort => shard
                    .primary
                    .run_write(async |c| wire::rollback_prepared(c, name).await)
                    .await
                    .map(|_| ()),
            };
            match done {
                Ok(()) => {
                    tracing::info!(shard = %part.shard, gid = %name, decision = decision.as_str(), age_ms = part.age.as_millis() as u64, "in-doubt transaction resolved");
                    if let Some(cache) = cluster.cache() {
                        // Which records it touched is not known here: the shard's
                        // cached entries go.
                        let _ = cache.abandon_shard(part.shard).await;
                    }
                    Some(part.gid.clone())
                }
                Err(e) => {
                    tracing::warn!(shard = %part.shard, gid = %name, error = %e.error, "in-doubt transaction not resolved");
                    None
                }
            }
        })
    });
    join_all(runs).await.into_iter().flatten().collect()
}
