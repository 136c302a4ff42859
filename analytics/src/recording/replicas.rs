//! Latest replication lag per replica, as reported by the shard manager's health checks.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest server name kept; names are `host:port` strings.
const MAX_SERVER_LEN: usize = 128;

/// What the last health check saw for one replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReplicaLag {
    /// Shard the replica belongs to.
    pub shard: u32,
    /// The replica's address or name, as the shard manager knows it.
    pub server: String,
    /// WAL bytes the replica is behind its primary, when measurable.
    pub lag_bytes: Option<u64>,
    /// Replay delay in milliseconds, when measurable.
    pub lag_ms: Option<u64>,
    /// Whether the shard manager currently sends reads to it.
    pub healthy: bool,
    /// When this was reported; an old value means health checks stopped.
    pub updated_at: DateTime<Utc>,
}

/// The worst of all replicas, for a dashboard's headline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReplicaSummary {
    /// Replicas known.
    pub replicas: usize,
    /// Replicas taking reads.
    pub healthy: usize,
    /// Largest byte lag among replicas that reported one.
    pub max_lag_bytes: Option<u64>,
    /// Largest time lag among replicas that reported one.
    pub max_lag_ms: Option<u64>,
}

/// Gauges keyed by (shard, server); the latest report wins.
pub(crate) struct ReplicaBoard {
    replicas: Mutex<BTreeMap<(u32, String), ReplicaLag>>,
    capacity: usize,
}

impl ReplicaBoard {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            replicas: Mutex::new(BTreeMap::new()),
            capacity,
        }
    }

    /// Stores `lag`, replacing the previous value for the same replica. A new replica
    /// past the capacity is ignored: the topology is small, so that is a caller bug,
    /// and metrics must not grow without bound because of it.
    pub(crate) fn set(&self, mut lag: ReplicaLag) {
        if lag.server.len() > MAX_SERVER_LEN {
            let mut cut = MAX_SERVER_LEN;
            while !lag.server.is_char_boundary(cut) {
                cut -= 1;
            }
            lag.server.truncate(cut);
        }
        let mut replicas = self.replicas.lock();
        let key = (lag.shard, lag.server.clone());
        if replicas.len() < self.capacity || replicas.contains_key(&key) {
            replicas.insert(key, lag);
        }
    }

    /// Every replica, by shard then server.
    pub(crate) fn all(&self) -> Vec<ReplicaLag> {
        self.replicas.lock().values().cloned().collect()
    }
}

/// Headline numbers over `replicas`.
pub(crate) fn summarize(replicas: &[ReplicaLag]) -> ReplicaSummary {
    ReplicaSummary {
        replicas: replicas.len(),
        healthy: replicas.iter().filter(|r| r.healthy).count(),
        max_lag_bytes: replicas.iter().filter_map(|r| r.lag_bytes).max(),
        max_lag_ms: replicas.iter().filter_map(|r| r.lag_ms).max(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lag(shard: u32, server: &str, bytes: Option<u64>, healthy: bool) -> ReplicaLag {
        ReplicaLag {
            shard,
            server: server.into(),
            lag_bytes: bytes,
            lag_ms: None,
            healthy,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn latest_value_wins_and_capacity_bounds_new_replicas() {
        let board = ReplicaBoard::new(2);
        board.set(lag(1, "b:5432", Some(10), true));
        board.set(lag(0, "a:5432", Some(5), true));
        board.set(lag(1, "b:5432", Some(99), false));
        board.set(lag(2, "c:5432", Some(1), true));
        let all = board.all();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].server, "a:5432");
        assert_eq!(all[1].lag_bytes, Some(99));
        let summary = summarize(&all);
        assert_eq!(summary.healthy, 1);
        assert_eq!(summary.max_lag_bytes, Some(99));
        assert_eq!(summary.max_lag_ms, None);
    }
}
