//! The task each gateway runs: every `failover.check_ms` it looks at what the health
//! monitor last saw of each shard's servers. A shard whose primary is not known to take
//! writes, or with a replica seen taking writes, has its servers asked whether they are
//! in recovery (on the request path's own pools), the answers [`decide`]d, and a
//! promotion recorded or a split-brain primary fenced. A healthy shard costs no query. Several
//! gateways may act on the same sight: recording is conditional and fencing
//! idempotent.
//!
//! Shards behind an address (`follow = "address"`) are watched otherwise
//! ([`super::behind`]): there the map's servers never change, and fencing a "writable
//! replica" by its address would fence whatever the address leads to now, the primary
//! included.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use super::decide::{decide, Decision, Seen};
use super::{behind, fence, record};
use shard_manager::cluster::{Cluster, Shard};
use shard_manager::config::ShardFollows;
use shard_manager::error::ClusterError;
use shard_manager::routing::ShardId;
use shard_manager::servers::Server;
use shard_manager::wire::upkeep;

/// The running watch; stops when dropped.
pub struct Watcher(tokio::task::JoinHandle<()>);

impl Drop for Watcher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Watcher {
    /// Watches `cluster`'s shards (must be called inside a runtime).
    pub fn spawn(cluster: Arc<Cluster>) -> Self {
        Self(tokio::spawn(watch(cluster)))
    }
}

/// What the watcher remembers between rounds, per shard.
#[derive(Default)]
struct Memory {
    /// When the map's primary was first seen unable to take writes, this time.
    lost_since: Option<Instant>,
    /// The last decision logged, so a lasting state is said once.
    said: Option<Decision>,
}

async fn watch(cluster: Arc<Cluster>) {
    let every = cluster.settings().failover.check_every();
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut memory: HashMap<ShardId, Memory> = HashMap::new();
    let mut behind_memory: HashMap<ShardId, behind::Memory> = HashMap::new();
    loop {
        ticker.tick().await;
        let (shards, behind_address): (Vec<_>, Vec<_>) = cluster
            .shards()
            .iter()
            .cloned()
            .partition(|s| s.follow == ShardFollows::Servers);
        let mut rounds: Vec<_> = behind_address
            .iter()
            .map(|s| (s, behind_memory.remove(&s.id).unwrap_or_default()))
            .collect();
        join_all(
            rounds
                .iter_mut()
                .map(|(s, memory)| behind::round(&cluster, s, memory)),
        )
        .await;
        behind_memory.extend(rounds.into_iter().map(|(s, m)| (s.id, m)));
        let decisions = join_all(shards.iter().map(|s| async {
            match looks_healthy(s) {
                true => Some(Decision::Healthy),
                false => roles(&cluster, s)
                    .await
                    .map(|(primary, replicas)| decide(primary, &replicas)),
            }
        }))
        .await;
        for (shard, decision) in shards.iter().zip(decisions) {
            let Some(decision) = decision else {
                continue;
            };
            let memory = memory.entry(shard.id).or_default();
            act(&cluster, shard, decision, memory).await;
        }
    }
}

/// Whether nothing calls for asking the shard's servers: the primary is not down nor
/// seen in recovery, and no replica was seen taking writes. Roles not seen yet (a
/// gateway starting, servers new after a failover) are the monitor's to find out
/// first: asking them here too would take pooled connections requests may need.
fn looks_healthy(shard: &Shard) -> bool {
    shard.primary.seen_writable() != Some(false)
        && shard.primary.stats().condition.down_reason.is_none()
        && shard
            .replicas
            .iter()
            .all(|r| r.seen_writable() != Some(true))
}

/// Every server of `shard` asked its role; None when a pool was too busy to tell.
async fn roles(cluster: &Cluster, shard: &Shard) -> Option<(Seen, Vec<(String, Seen)>)> {
    let limit = Duration::from_millis(cluster.settings().replication.check_timeout_ms);
    let (primary, replicas) = futures_util::join!(
        role(&shard.primary, limit),
        join_all(shard.replicas.iter().map(|r| role(r, limit)))
    );
    let replicas = shard
        .replicas
        .iter()
        .zip(replicas)
        .map(|(r, seen)| Some((r.addr.clone(), seen?)))
        .collect::<Option<Vec<_>>>()?;
    Some((primary?, replicas))
}

async fn role(server: &Server, limit: Duration) -> Option<Seen> {
    let asked = server.probe(async |conn| upkeep::role(conn).await);
    match tokio::time::timeout(limit, asked).await {
        Ok(Ok((in_recovery, timeline))) => {
            server.saw_role(in_recovery);
            Some(match (in_recovery, timeline) {
                (false, Some(timeline)) => Seen::Writable { timeline },
                _ => Seen::InRecovery,
            })
        }
        // Busy is not broken: this round says nothing about the server.
        Ok(Err(ClusterError::Saturated { .. })) => None,
        Ok(Err(_)) | Err(_) => Some(Seen::Down),
    }
}

async fn act(cluster: &Cluster, shard: &Shard, decision: Decision, memory: &mut Memory) {
    let settings = cluster.settings();
    if matches!(decision, Decision::Healthy | Decision::Fence { .. }) {
        memory.lost_since = None;
    } else {
        memory.lost_since.get_or_insert_with(Instant::now);
    }
    let first = memory.said.as_ref() != Some(&decision);
    if !matches!(decision, Decision::Promote { .. }) {
        shard.unsupersede();
    }
    match &decision {
        Decision::Healthy => {}
        Decision::Waiting => {
            if first {
                tracing::warn!(shard = %shard.id, primary = %shard.primary.addr, "the shard's primary cannot take writes; waiting for its HA manager to promote a replica");
            }
        }
        Decision::Ambiguous { writable } => {
            if first {
                tracing::error!(shard = %shard.id, primary = %shard.primary.addr, ?writable, "several replicas of the shard take writes: no new primary is chosen; an operator must fence all but one");
            }
        }
        Decision::Promote { to } => {
            let detected_ms = memory
                .lost_since
                .map_or(0, |t| t.elapsed().as_millis() as u64);
            let from = shard.primary.addr.clone();
            match record::promote(settings, shard.id, &from, to, detected_ms).await {
                Ok(Some(map)) => {
                    let term = map.shards[shard.id.index()].term;
                    tracing::warn!(shard = %shard.id, %from, %to, term, version = %map.version, "failover recorded in the map");
                    cluster.map().refresh(map.version).await;
                }
                // Another gateway stored it first: the map brings it.
                Ok(None) => {
                    cluster.map().wake().notify_one();
                }
                // The map still names the old primary, which may still take writes:
                // this gateway's writes to the shard are refused at once (and wait for
                // the map) rather than land on a primary from before the promotion.
                Err(e) => {
                    tracing::warn!(shard = %shard.id, %from, %to, error = %e, "could not record the failover (tried again next round); writes to the shard wait until it is recorded");
                    shard.supersede(format!(
                        "{to} took over from {from} on a newer timeline, and this gateway could not record it in the map ({e}); writes wait until it is recorded"
                    ));
                }
            }
        }
        Decision::Fence { servers } => {
            let version = cluster.map().version();
            for server in servers {
                match fence::disown(settings, shard.id, server, version).await {
                    Ok(Some(slots)) if slots > 0 => {
                        tracing::warn!(shard = %shard.id, %server, primary = %shard.primary.addr, slots, %version, "a replica of the shard takes writes beside its primary, on the same or an older timeline (split brain): fenced, it owns no slot");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(shard = %shard.id, %server, error = %e, "could not fence a writable replica (tried again next round)");
                    }
                }
            }
        }
    }
    memory.said = Some(decision);
}
