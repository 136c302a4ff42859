//! One version of the shard map: the servers of every shard, the placement settings
//! and, under `slots`, the owner of every slot. Pure: loading and storing it is
//! `map::meta`'s job, telling the shards `map::ownership`'s.

use serde::Serialize;

use crate::config::{Balance, ClusterSettings, ConfigError, ShardFollows, ShardSettings};
use crate::routing::{LayoutError, MapVersion, Router, RoutingSettings, ShardId, Strategy};
use crate::store::identity::Identity;

/// One shard's servers, as the map records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShardEntry {
    pub id: ShardId,
    pub primary: String,
    pub replicas: Vec<String>,
    pub balance: Balance,
    pub read_primary: bool,
    /// Whether the shard's servers are listed one by one or are fixed addresses an HA
    /// layer keeps pointed at the primary and the standbys: in the map so that every
    /// gateway follows the shard's failovers alike.
    pub follow: ShardFollows,
    /// Emptied by `remove-shard`: owns no slot and takes none; its servers may be gone.
    pub retired: bool,
    /// The primary's term: 1 at the start, raised by every failover, never lowered.
    pub term: u64,
    /// Behind an address (`follow = "address"`): the primary's identity as recorded
    /// (`map_shards.timeline`, `system_identifier`, `node`); None until first seen, and
    /// for a shard that follows its servers.
    pub identity: Option<Identity>,
}

/// The cluster's placement at one map version.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardMap {
    pub version: MapVersion,
    pub routing: RoutingSettings,
    /// The logical tables clients may use.
    pub tables: Vec<String>,
    pub shards: Vec<ShardEntry>,
    /// Under `slots`, `owners[slot]` owns the slot. Empty under the other strategies,
    /// where slots are virtual and every shard accepts every slot.
    pub owners: Vec<ShardId>,
}

impl ShardMap {
    /// The map a configuration file describes, at `version` (the seed `init` stores
    /// as version 1; the map a gateway routes with, as version 0, while it has never
    /// reached the metadata database).
    pub fn from_settings(
        settings: &ClusterSettings,
        version: MapVersion,
    ) -> Result<Self, ConfigError> {
        let router = settings.validate()?;
        let shards = settings
            .shards
            .iter()
            .enumerate()
            .map(|(i, s)| ShardEntry {
                id: ShardId(i as u32),
                primary: s.primary.clone(),
                replicas: s.replicas.clone(),
                balance: s.balance,
                read_primary: s.read_primary,
                follow: s.follow,
                retired: false,
                term: 1,
                identity: None,
            })
            .collect();
        let owners = match router.strategy() {
            Strategy::Slots => {
                let mut owners = vec![ShardId(0); router.slot_count() as usize];
                for i in 0..settings.shards.len() as u32 {
                    for (from, to) in router.ranges_of(ShardId(i)) {
                        owners[from as usize..=to as usize].fill(ShardId(i));
                    }
                }
                owners
            }
            _ => Vec::new(),
        };
        Ok(Self {
            version,
            routing: settings.routing.clone(),
            tables: settings.tables.allowed.clone(),
            shards,
            owners,
        })
    }

    pub fn slot_count(&self) -> u32 {
        self.routing.slot_count
    }

    /// The slots `shard` owns, ascending: its `owners` entries under `slots`, every
    /// slot under the other strategies.
    /// The shards `remove-shard` emptied.
    pub fn retired(&self) -> Vec<ShardId> {
        self.shards
            .iter()
            .filter(|s| s.retired)
            .map(|s| s.id)
            .collect()
    }

    pub fn slots_of(&self, shard: ShardId) -> Vec<i32> {
        if self.owners.is_empty() {
            return (0..self.slot_count() as i32).collect();
        }
        self.owners
            .iter()
            .enumerate()
            .filter(|(_, owner)| **owner == shard)
            .map(|(slot, _)| slot as i32)
            .collect()
    }

    /// `shard`'s slots as merged inclusive ranges (empty under non-`slots` strategies).
    pub fn ranges_of(&self, shard: ShardId) -> Vec<(u32, u32)> {
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for (slot, owner) in self.owners.iter().enumerate() {
            if *owner != shard {
                continue;
            }
            let slot = slot as u32;
            match ranges.last_mut() {
                Some((_, end)) if *end + 1 == slot => *end = slot,
                _ => ranges.push((slot, slot)),
            }
        }
        ranges
    }

    /// The router for this map, stamped with its version.
    pub fn router(&self) -> Result<Router, LayoutError> {
        let ranges: Vec<Vec<(u32, u32)>> =
            self.shards.iter().map(|s| self.ranges_of(s.id)).collect();
        Ok(Router::try_new(&self.routing, &ranges)?.at_version(self.version))
    }

    /// `base` with this map's shards and placement settings: what a gateway builds its
    /// cluster from (with [`ShardMap::router`] for the slots).
    pub fn settings_over(&self, base: &ClusterSettings) -> ClusterSettings {
        let mut settings = base.clone();
        settings.routing = self.routing.clone();
        if !self.tables.is_empty() {
            settings.tables.allowed = self.tables.clone();
        }
        settings.shards = self
            .shards
            .iter()
            .map(|s| ShardSettings {
                primary: s.primary.clone(),
                replicas: s.replicas.clone(),
                // The map, not the file, says which slots a shard owns.
                slots: Vec::new(),
                balance: s.balance,
                read_primary: s.read_primary,
                follow: s.follow,
            })
            .collect();
        settings
    }
}

/// The map the built-in default configuration seeds (three shards in even ranges,
/// version 1): a fixture for the tests of what reads or changes a map (here, and in
/// crates above with the `fixtures` feature; never in a release build).
#[cfg(any(test, feature = "fixtures"))]
pub fn three_shards() -> ShardMap {
    let settings: ClusterSettings = config::Config::builder()
        .add_source(config::File::from_str(
            crate::config::DEFAULT_CONFIG,
            config::FileFormat::Toml,
        ))
        .build()
        .unwrap()
        .try_deserialize()
        .unwrap();
    ShardMap::from_settings(&settings, MapVersion(1)).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_is_the_config_s_even_ranges() {
        let map = three_shards();
        assert_eq!(map.owners.len(), 1024);
        assert_eq!(map.tables, ["users", "orders", "products", "events"]);
        assert_eq!(map.ranges_of(ShardId(0)), vec![(0, 341)]);
        assert_eq!(map.ranges_of(ShardId(2)), vec![(683, 1023)]);
        assert_eq!(map.slots_of(ShardId(1)).len(), 341);
        let router = map.router().unwrap();
        assert_eq!(router.version(), MapVersion(1));
        assert_eq!(router.ranges_of(ShardId(1)), vec![(342, 682)]);
    }

    #[test]
    fn the_router_follows_the_owners() {
        let mut map = three_shards();
        map.owners[349] = ShardId(2);
        map.version = MapVersion(2);
        let router = map.router().unwrap();
        let key = crate::routing::ShardKey::parse("user_123").unwrap();
        let routed = router.route(key).unwrap();
        assert_eq!((routed.slot().0, routed.shard()), (349, ShardId(2)));
        assert_eq!(routed.map_version(), MapVersion(2));
        assert_eq!(
            map.ranges_of(ShardId(1)),
            vec![(342, 348), (350, 682)],
            "the moved slot leaves a hole"
        );
    }

    #[test]
    fn a_shard_can_own_nothing() {
        let mut map = three_shards();
        for owner in map.owners.iter_mut() {
            if *owner == ShardId(2) {
                *owner = ShardId(0);
            }
        }
        let router = map.router().unwrap();
        assert!(router.ranges_of(ShardId(2)).is_empty());
        assert_eq!(router.ranges_of(ShardId(0)), vec![(0, 341), (683, 1023)]);
    }
}
