//! One type per configuration section, with the defaults a missing field takes.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// Most ring points per shard per unit of weight (`routing.vnodes`).
pub const MAX_VNODES: u32 = 4096;
/// Largest `routing.weights` entry.
pub const MAX_WEIGHT: u32 = 64;

/// Replica health, lag limits and consistency waits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ReplicationSettings {
    /// How often every server is checked (up/down, WAL position, lag).
    pub check_interval_ms: u64,
    /// A check that takes longer counts as a failure.
    pub check_timeout_ms: u64,
    /// How long a replica that failed takes no reads (a passing check lifts it sooner).
    pub ban_ms: u64,
    /// A replica further behind than this many WAL bytes takes no reads.
    pub max_lag_bytes: u64,
    /// A replica further behind than this (time since the primary passed the replica's
    /// replay position) takes no reads.
    pub max_lag_ms: u64,
    /// A read carrying a write token waits this long for a replica to replay the write
    /// before it reads the primary instead.
    pub ryw_wait_ms: u64,
    /// `x-durability: replica` waits this long for a replica to apply the write.
    pub durability_timeout_ms: u64,
}

impl Default for ReplicationSettings {
    fn default() -> Self {
        Self {
            check_interval_ms: 500,
            check_timeout_ms: 1000,
            ban_ms: 5000,
            max_lag_bytes: 16 * 1024 * 1024,
            max_lag_ms: 5000,
            ryw_wait_ms: 50,
            durability_timeout_ms: 2000,
        }
    }
}

impl ReplicationSettings {
    pub fn check_interval(&self) -> Duration {
        Duration::from_millis(self.check_interval_ms)
    }
    /// Lag older than this is unknown: three missed checks.
    pub fn lag_fresh_for(&self) -> Duration {
        Duration::from_millis(self.check_interval_ms * 3 + self.check_timeout_ms)
    }
}

/// How to reach and use the PostgreSQL servers.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub user: String,
    /// Wrapped so it never appears in logs or `Debug` output.
    pub password: SecretString,
    pub dbname: String,
    pub connect_timeout_ms: u64,
    pub statement_timeout_ms: u64,
    /// Most operations on one server at once, across threads; also the most
    /// connections one thread keeps to it.
    pub pool_max_size: usize,
    pub pool_wait_timeout_ms: u64,
}

impl DatabaseSettings {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub fn statement_timeout(&self) -> Duration {
        Duration::from_millis(self.statement_timeout_ms)
    }
    pub fn pool_wait_timeout(&self) -> Duration {
        Duration::from_millis(self.pool_wait_timeout_ms)
    }
}

/// Which placement function is used (see [`crate::strategy`] for each one's guarantees).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// `xxh3_64(key) % slot_count`, slots mapped to shards by ranges.
    Slots,
    /// `xxh3_64(key) mod N`, or `id mod N` with `numeric`.
    Modulo,
    /// Consistent hashing: `vnodes × weight` points per shard on a 64-bit ring.
    HashRing,
    /// `[[routing.ranges]]`: key ranges to shards, lexicographic or `numeric`.
    Range,
}

impl Strategy {
    /// The name used in configuration and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slots => "slots",
            Self::Modulo => "modulo",
            Self::HashRing => "hash_ring",
            Self::Range => "range",
        }
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How keys are placed on shards. Fixed for the life of a cluster: changing any of it
/// moves data.
#[derive(Debug, Clone, Deserialize)]
pub struct RoutingSettings {
    pub strategy: Strategy,
    /// `hash % slot_count` is the slot: it places keys under `slots` and is stored with
    /// every record under all strategies, for data-movement statistics.
    pub slot_count: u32,
    /// `modulo` and `range` only: keys are integers (`i64`), divided or compared as
    /// numbers; a key that is not one is refused.
    #[serde(default)]
    pub numeric: bool,
    /// `hash_ring` only: ring points per shard per unit of weight. More points, more even
    /// spread (relative spread about 1/√vnodes) at the cost of memory and lookup depth.
    #[serde(default = "default_vnodes")]
    pub vnodes: u32,
    /// `hash_ring` only: one weight per shard, in `[[shards]]` order, multiplying its
    /// points; empty = weight 1 each.
    #[serde(default)]
    pub weights: Vec<u32>,
    /// `range` only: the key ranges in key order, covering the whole key space.
    #[serde(default)]
    pub ranges: Vec<RangeSettings>,
}

fn default_vnodes() -> u32 {
    256
}

impl Default for RoutingSettings {
    /// The foundation's placement: 1024 slots, even ranges.
    fn default() -> Self {
        Self {
            strategy: Strategy::Slots,
            slot_count: 1024,
            numeric: false,
            vnodes: default_vnodes(),
            weights: Vec::new(),
            ranges: Vec::new(),
        }
    }
}

/// One `[[routing.ranges]]` entry: keys in `[from, to)` live on `shard`.
#[derive(Debug, Clone, Deserialize)]
pub struct RangeSettings {
    /// The owning shard's index in `[[shards]]` order.
    pub shard: u32,
    /// Inclusive lower bound; omitted on the first range (the start of the key space).
    #[serde(default)]
    pub from: Option<String>,
    /// Exclusive upper bound; omitted on the last range (the end of the key space).
    #[serde(default)]
    pub to: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TableSettings {
    pub allowed: Vec<String>,
}

/// One shard: exactly one primary and any number of replicas, as `host:port`.
#[derive(Debug, Clone, Deserialize)]
pub struct ShardSettings {
    pub primary: String,
    #[serde(default)]
    pub replicas: Vec<String>,
    /// Inclusive slot ranges, `"0-341"` or `"7"`; omitted everywhere = even ranges.
    /// `slots` strategy only.
    #[serde(default)]
    pub slots: Vec<String>,
    /// How eventual reads are spread over the qualifying replicas.
    #[serde(default)]
    pub balance: Balance,
    /// Let the primary take eventual reads too (it always takes them when no replica
    /// qualifies).
    #[serde(default)]
    pub read_primary: bool,
}

/// Read balancing among a shard's replicas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Each read goes to the next replica in turn.
    #[default]
    RoundRobin,
    /// Each read goes to the replica with the fewest reads in flight.
    LeastOutstanding,
}

/// The optional Redis read-through cache.
#[derive(Debug, Clone, Deserialize)]
pub struct CacheSettings {
    pub enabled: bool,
    pub url: String,
    pub prefix: String,
    pub ttl_secs: u64,
    /// Every Redis call is bounded by this; past it the request goes to the shard.
    pub timeout_ms: u64,
    /// Consecutive Redis failures that open the breaker.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long an open breaker bypasses Redis.
    #[serde(default = "default_breaker_open_ms")]
    pub breaker_open_ms: u64,
}

fn default_breaker_failures() -> u32 {
    3
}

fn default_breaker_open_ms() -> u64 {
    1000
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            url: "redis://127.0.0.1:26379".into(),
            prefix: "shardgate".into(),
            ttl_secs: 300,
            timeout_ms: 10,
            breaker_failures: default_breaker_failures(),
            breaker_open_ms: default_breaker_open_ms(),
        }
    }
}
