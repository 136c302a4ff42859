//! Background health checks. Every `check_interval_ms`, each shard's servers are probed
//! at once: a passing check marks a server up and lifts a replica's ban; a failing one
//! marks it down (and bans a replica). Each replica's lag is measured against its
//! primary in bytes and in time.
//!
//! Time lag is "how long ago the primary passed the replica's replay position", read
//! from a short history of the primary's WAL positions. Unlike
//! `now() - pg_last_xact_replay_timestamp()`, it stays 0 on an idle system where the
//! replica has replayed everything. Its resolution is the check interval.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use shard_manager::cache::Cache;
use shard_manager::cluster::schema::SchemaState;
use shard_manager::cluster::shard::Shard;
use shard_manager::cluster::Cluster;
use shard_manager::config::ReplicationSettings;
use shard_manager::error::ClusterError;
use shard_manager::routing::Role;
use shard_manager::servers::{Lag, Server};
use shard_manager::store::migrations::{self, Migration};
use shard_manager::wal::Lsn;
use shard_manager::wire::{upkeep, WireConn, WireError};

/// The running checker. Dropping it stops the task (the gateway drops it on shutdown).
pub struct Monitor {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Monitor {
    /// Starts checking at once, then every interval. Must be called inside a runtime.
    pub fn spawn(cluster: Arc<Cluster>) -> Self {
        let task = tokio::spawn(async move {
            let limits = cluster.settings().replication.clone();
            let expected = migrations::expected();
            let mut histories: Vec<WalHistory> = Vec::new();
            let mut ticker = tokio::time::interval(limits.check_interval());
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                // The set grows when the map gains a shard.
                let shards = cluster.shards();
                histories.resize_with(shards.len(), WalHistory::default);
                let checks = shards
                    .iter()
                    .zip(histories.iter_mut())
                    .map(|(shard, history)| {
                        check_shard(shard, history, &limits, &expected, cluster.cache())
                    });
                join_all(checks).await;
                if cluster.map().status().source == "metadata" {
                    join_all(shards.iter().map(|s| record_identity(&cluster, s))).await;
                }
            }
        });
        Self { task }
    }
}

/// Recent primary WAL positions with the time each was seen; bounded.
#[derive(Debug, Default)]
pub struct WalHistory {
    samples: VecDeque<(Instant, Lsn)>,
}

const HISTORY: usize = 256;

impl WalHistory {
    pub fn push(&mut self, at: Instant, lsn: Lsn) {
        if self.samples.len() == HISTORY {
            self.samples.pop_front();
        }
        self.samples.push_back((at, lsn));
    }

    pub fn latest(&self) -> Option<Lsn> {
        self.samples.back().map(|(_, l)| *l)
    }

    /// The lag of a replica that has replayed up to `replayed`, seen at `now`.
    pub fn lag(&self, replayed: Lsn, now: Instant) -> Option<Lag> {
        let latest = self.latest()?;
        if replayed >= latest {
            return Some(Lag { bytes: 0, ms: 0 });
        }
        // The first time the primary was seen past the replica's position.
        let passed = self
            .samples
            .iter()
            .find(|(_, lsn)| *lsn > replayed)
            .map(|(t, _)| *t)?;
        Some(Lag {
            bytes: latest.0 - replayed.0,
            ms: now.saturating_duration_since(passed).as_millis() as u64,
        })
    }
}

async fn check_shard(
    shard: &Shard,
    history: &mut WalHistory,
    limits: &ReplicationSettings,
    expected: &[Migration],
    cache: Option<&Cache>,
) {
    let timeout = Duration::from_millis(limits.check_timeout_ms);
    // The primary's statement also reads the shard's cache epoch: one round trip. The
    // reading is adopted as soon as the primary answers, not once the replicas have: it
    // is dated when it was sent, so waiting on a slow replica would only shorten the
    // time it is current for (and make the gateway bypass its cache meanwhile).
    let primary = async {
        let sent = Instant::now();
        let primary = check(&shard.primary, timeout, primary_position).await;
        if let Some((lsn, epoch, _)) = primary {
            if let Some(cache) = cache {
                let epoch = epoch.map(|e| e.max(0) as u64);
                cache.follow_epoch(shard.id, epoch, lsn, sent).await;
            }
            check_schema(shard, expected, timeout).await;
        }
        primary
    };
    let (primary, replicas) = futures_util::join!(
        primary,
        join_all(
            shard
                .replicas
                .iter()
                .map(|r| check(r, timeout, replica_position))
        )
    );
    let now = Instant::now();
    if let Some((lsn, _, _)) = primary {
        history.push(now, lsn);
    }
    for (replica, replayed) in shard.replicas.iter().zip(replicas) {
        // Out of recovery while the primary answers too: two servers take writes
        // (split brain) and this one is not the map's; no read goes to it.
        if primary.is_some()
            && replayed
                .as_ref()
                .is_some_and(|(_, _, recovering)| !recovering)
        {
            replica.check_failed("not in recovery while the shard's primary answers (split brain: the failover watcher fences it)".into());
            continue;
        }
        replica.set_lag(replayed.and_then(|(r, (), _)| history.lag(r, now)));
    }
}

/// Behind an address: once a connection through it reached a writable primary, that
/// primary's identity is recorded in the map if it holds none yet, and the identity the
/// map holds (this one, or another gateway's) becomes the primary's (its floor, and
/// what it tells another cluster by). Bounded by the check timeout; a failure is tried
/// again at the next check.
async fn record_identity(cluster: &Cluster, shard: &Shard) {
    let Some(behind) = &shard.primary.behind else {
        return;
    };
    if behind.recorded().is_some() {
        return;
    }
    let Some((seen, _)) = behind.last_seen().filter(|(seen, _)| seen.writable()) else {
        return;
    };
    let settings = cluster.settings();
    let timeout = Duration::from_millis(settings.replication.check_timeout_ms);
    let asked = crate::failover::identity::record_first(settings, shard.id, &seen);
    match tokio::time::timeout(timeout, asked).await {
        Ok(Ok((Some(stored), _))) => behind.record(stored),
        Ok(Ok((None, _))) => {}
        Ok(Err(e)) => {
            tracing::debug!(shard = %shard.id, error = %e, "the primary's identity is not recorded yet")
        }
        Err(_) => {
            tracing::debug!(shard = %shard.id, "recording the primary's identity took too long")
        }
    }
}

/// Reads which migrations the primary has applied, and says so once when that changes:
/// a shard missing some is named at start-up (the first check runs at once) and
/// whenever it happens later.
async fn check_schema(shard: &Shard, expected: &[Migration], timeout: Duration) {
    let probe = shard
        .primary
        .probe(async |conn| upkeep::applied_migrations(conn).await);
    let Ok(Ok(applied)) = tokio::time::timeout(timeout, probe).await else {
        return;
    };
    let missing = migrations::missing(expected, &applied);
    let state = if missing.is_empty() {
        SchemaState::Complete
    } else {
        SchemaState::Missing(missing.clone())
    };
    let before = shard.schema.set(state.clone());
    if before != state {
        match state {
            SchemaState::Missing(_) => tracing::warn!(
                shard = %shard.id,
                server = %shard.primary.addr,
                missing = %missing.join(", "),
                "shard lacks migrations: its requests answer 503 until `shard-admin migrate` (or ./setup.sh run) applies them"
            ),
            _ if before != SchemaState::Unknown => {
                tracing::info!(shard = %shard.id, "shard schema complete again")
            }
            _ => {}
        }
    }
}

/// A primary's check: [`upkeep::position_and_epoch`]; the rest is the cache epoch.
async fn primary_position(
    conn: &mut WireConn,
) -> Result<(upkeep::Position, Option<i64>), WireError> {
    upkeep::position_and_epoch(conn).await
}

/// A replica's check: [`upkeep::position`], with nothing more.
async fn replica_position(conn: &mut WireConn) -> Result<(upkeep::Position, ()), WireError> {
    Ok((upkeep::position(conn).await?, ()))
}

/// Probes one server with `query` (whether it is in recovery, its WAL position, whether
/// it is read-only by default, and whatever else the same statement read); returns the
/// position, the rest and whether it is in recovery when the check passed.
async fn check<T>(
    server: &Server,
    timeout: Duration,
    query: impl AsyncFnOnce(&mut WireConn) -> Result<(upkeep::Position, T), WireError>,
) -> Option<(Lsn, T, bool)> {
    let probe = server.probe(query);
    match tokio::time::timeout(timeout, probe).await {
        Ok(Ok((position, rest))) => {
            let (in_recovery, lsn) = (position.in_recovery, position.wal);
            server.saw_role(in_recovery);
            server.saw_read_only_setting(position.read_only_by_setting);
            // A primary in recovery was demoted: no write goes to it. A replica out of
            // recovery was promoted: it still serves reads while the failover watcher
            // records it as the shard's primary (or fences it, if the map's primary
            // is up: `failover`).
            if in_recovery && server.role == Role::Primary {
                server.check_failed("configured as primary but in recovery".into());
                return None;
            }
            let lsn = lsn.as_deref().and_then(Lsn::parse);
            server.check_passed(lsn);
            Some((lsn?, rest, in_recovery))
        }
        // Busy is not broken: a saturated pool says nothing about the server's health.
        Ok(Err(ClusterError::Saturated { .. })) => None,
        Ok(Err(err)) => {
            if !err.is_unavailable() {
                server.check_failed(err.to_string());
            }
            None
        }
        Err(_) => {
            server.check_failed(format!("health check took over {} ms", timeout.as_millis()));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_zero_when_caught_up_even_long_after_the_last_write() {
        let t0 = Instant::now();
        let mut h = WalHistory::default();
        h.push(t0, Lsn(100));
        let later = t0 + Duration::from_secs(60);
        assert_eq!(h.lag(Lsn(100), later), Some(Lag { bytes: 0, ms: 0 }));
    }

    #[test]
    fn lag_counts_from_when_the_primary_passed_the_replica() {
        let t0 = Instant::now();
        let mut h = WalHistory::default();
        h.push(t0, Lsn(100));
        h.push(t0 + Duration::from_millis(500), Lsn(200));
        h.push(t0 + Duration::from_millis(1000), Lsn(300));
        // Replayed 150: the primary was first seen past it at t0+500ms.
        let lag = h.lag(Lsn(150), t0 + Duration::from_millis(1200)).unwrap();
        assert_eq!(
            lag,
            Lag {
                bytes: 150,
                ms: 700
            }
        );
        assert_eq!(
            h.lag(Lsn(50), t0 + Duration::from_millis(1000)).unwrap().ms,
            1000
        );
    }

    #[test]
    fn history_is_bounded_and_unknown_without_samples() {
        let t0 = Instant::now();
        let mut h = WalHistory::default();
        assert_eq!(h.lag(Lsn(1), t0), None);
        for i in 0..1000 {
            h.push(t0, Lsn(i));
        }
        assert_eq!(h.samples.len(), HISTORY);
        assert_eq!(h.latest(), Some(Lsn(999)));
    }
}
