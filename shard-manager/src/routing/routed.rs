//! A shard key with its placement: routed once, at the edge, and trusted below.

use std::fmt;

use super::key::{ShardId, ShardKey, Slot};

/// The version of the shard map a key was routed with. Maps only move forward; a
/// shard refuses a key routed with a map that no longer gives it the key's slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct MapVersion(pub u64);

impl fmt::Display for MapVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// Where one key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Placement {
    /// `xxh3_64` of the key's bytes.
    pub hash: u64,
    /// `hash % slot_count`: the shard's slot under `slots`, the stored virtual slot
    /// under every other strategy.
    pub slot: Slot,
    pub shard: ShardId,
}

/// A key and where it lives, under one map version.
///
/// Only [`Router::route`](super::Router::route) makes one, so holding a `RoutedKey`
/// means the key was checked (length, and integer-ness under `routing.numeric`) and
/// placed exactly once. Every cluster operation takes one; nothing below the edge
/// derives placement from a string again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedKey {
    key: ShardKey,
    placement: Placement,
    version: MapVersion,
}

impl RoutedKey {
    pub(super) fn new(key: ShardKey, placement: Placement, version: MapVersion) -> Self {
        Self {
            key,
            placement,
            version,
        }
    }

    pub fn key(&self) -> &ShardKey {
        &self.key
    }

    pub fn as_str(&self) -> &str {
        self.key.as_str()
    }

    pub fn shard(&self) -> ShardId {
        self.placement.shard
    }

    pub fn slot(&self) -> Slot {
        self.placement.slot
    }

    pub fn placement(&self) -> Placement {
        self.placement
    }

    /// The map version the placement was computed with.
    pub fn map_version(&self) -> MapVersion {
        self.version
    }
}

impl fmt::Display for RoutedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key.as_str())
    }
}
