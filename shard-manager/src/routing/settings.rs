//! The `[routing]` section: how keys are placed on shards. It lives with the routing
//! code (the configuration re-exports it) so that routing never imports the
//! configuration that validates it.

use serde::Deserialize;

/// Most ring points per shard per unit of weight (`routing.vnodes`).
pub const MAX_VNODES: u32 = 4096;
/// Largest `routing.weights` entry.
pub const MAX_WEIGHT: u32 = 64;

/// Which placement function is used (see [`crate::routing::strategy`] for each one's guarantees).
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
/// moves data. With `[tables]` and `[[shards]]` it seeds the shard map once
/// (`shard-admin init`); from then on the map in the metadata database is the truth.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct RoutingSettings {
    /// The placement function: `slots` (key, slot, shard), `modulo`, `hash_ring` or
    /// `range`.
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
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
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
