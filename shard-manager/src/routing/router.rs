//! Placement: key → shard, a pure function of the key and the configured strategy
//! ([`super::strategy`]: `slots`, `modulo`, `hash_ring` or `range`).
//!
//! Every key has a hash, `xxh3_64(key bytes, seed 0)`, and a slot,
//! `hash % slot_count`. Under `slots` the slot decides the shard. Under the other
//! strategies it is a virtual slot that decides nothing but is still stored with every
//! record (the `slot` column), so data movement can be counted per slot whatever the
//! strategy. XXH3-64 is a published, platform-independent hash (the xxHash
//! specification), so placement never changes across machines, compilers or releases.
//! Changing the hash, the seed, the slot count or the strategy would move data: all are
//! fixed for the life of a cluster.

use super::key::{ShardId, ShardKey, Slot};
use super::routed::{MapVersion, Placement, RoutedKey};
use super::settings::{RoutingSettings, Strategy};
use super::strategy::{
    Bound, Decision, HashRing, KeyInput, KeyRange, Layout, Modulo, RangeMap, Sharding, SlotMap,
};

pub use super::strategy::key_hash;

/// The routing table. Cheap to clone and to query; no I/O.
#[derive(Debug, Clone)]
pub struct Router {
    layout: Layout,
    /// Slots for the `slot` column (and for placement under `slots`).
    slot_count: u32,
    /// Keys are integers (`routing.numeric`); anything else is refused at the edge.
    numeric: bool,
    /// The map version this layout is; stamped on every key it routes.
    version: MapVersion,
}

/// Why a routed key lives where it does, for people who want to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    pub placement: Placement,
    /// The key's integer value when keys are numeric.
    pub number: Option<i64>,
    pub decision: Decision,
}

/// Settings the strategy cannot be built from (the configuration names them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LayoutError(pub String);

/// A key the configured strategy cannot place: a client mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error(
        "the shard key {key:?} is not an integer; routing.numeric is on, so keys must be \
         whole numbers from {} to {}",
        i64::MIN,
        i64::MAX
    )]
    NotAnInteger { key: String },
}

impl Router {
    /// Builds the router, or says what in the strategy's settings is wrong.
    /// `slot_ranges`: one entry per shard; explicit slot ranges under `slots`, all
    /// empty otherwise (even split). Called by `ClusterSettings::validate`, which is
    /// how every caller gets a router.
    pub fn try_new(
        routing: &RoutingSettings,
        slot_ranges: &[Vec<(u32, u32)>],
    ) -> Result<Self, LayoutError> {
        let shards = slot_ranges.len().max(1) as u32;
        let layout = match routing.strategy {
            Strategy::Slots => Layout::Slots(SlotMap::from_ranges(routing.slot_count, slot_ranges)),
            Strategy::Modulo => Layout::Modulo(Modulo::new(shards, routing.numeric)),
            Strategy::HashRing if routing.weights.is_empty() => {
                Layout::HashRing(HashRing::new(shards, routing.vnodes))
            }
            Strategy::HashRing if routing.weights.len() == shards as usize => {
                Layout::HashRing(HashRing::weighted(routing.vnodes, &routing.weights))
            }
            Strategy::HashRing => {
                return Err(LayoutError(format!(
                    "routing.weights lists {} weights for {shards} shards; give one per shard, \
                     or none",
                    routing.weights.len()
                )))
            }
            Strategy::Range => Layout::Range(range_map(routing, shards)?),
        };
        Ok(Self {
            layout,
            slot_count: routing.slot_count.max(1),
            numeric: routing.numeric,
            version: MapVersion(0),
        })
    }

    /// The same layout stamped with `version` (a map loaded from the metadata database).
    pub fn at_version(mut self, version: MapVersion) -> Self {
        self.version = version;
        self
    }

    /// The configured strategy.
    pub fn strategy(&self) -> Strategy {
        self.layout.strategy()
    }

    /// The strategy itself, for per-strategy views (slot ranges, ring shares, key ranges)
    /// and for planning: `layout().with_added_shard()` is the placement after a shard
    /// is added.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Whether keys must be integers (`routing.numeric`).
    pub fn is_numeric(&self) -> bool {
        self.numeric
    }

    pub fn shard_count(&self) -> u32 {
        self.layout.shard_count()
    }

    pub fn slot_count(&self) -> u32 {
        self.slot_count
    }

    /// The map version stamped on the keys this router places.
    pub fn version(&self) -> MapVersion {
        self.version
    }

    /// Where `key` lives: the one way to ask. Refuses a key the strategy cannot place
    /// (with `routing.numeric`, one that is not an integer), so call it at the edge,
    /// where a client's mistake can be answered.
    pub fn route(&self, key: ShardKey) -> Result<RoutedKey, RouteError> {
        let input = self.input(&key)?;
        let placement = self.place(&input);
        Ok(RoutedKey::new(key, placement, self.version))
    }

    /// Why a routed key lives where it does: the strategy's decision and, for numeric
    /// keys, the key's value.
    pub fn explain(&self, routed: &RoutedKey) -> Explained {
        // The key was routed by a router of the same settings, so it parses again.
        let input = self
            .input(routed.key())
            .unwrap_or_else(|_| KeyInput::text(routed.as_str()));
        let (_, decision) = self.layout.decide(&input);
        Explained {
            placement: routed.placement(),
            number: input.number(),
            decision,
        }
    }

    /// The slot ranges `shard` owns, merged and inclusive, for display. Empty unless the
    /// strategy is `slots`: other strategies do not assign slots to shards.
    /// Whether any key can route to `shard`: it owns a slot (`slots`), or the strategy
    /// places keys on every shard. A shard added but not given slots yet, or retired,
    /// serves nothing.
    pub fn serves_keys(&self, shard: ShardId) -> bool {
        match &self.layout {
            Layout::Slots(map) => !map.ranges_of(shard).is_empty(),
            _ => true,
        }
    }

    pub fn ranges_of(&self, shard: ShardId) -> Vec<(u32, u32)> {
        match &self.layout {
            Layout::Slots(map) => map.ranges_of(shard),
            _ => Vec::new(),
        }
    }

    fn input<'k>(&self, key: &'k ShardKey) -> Result<KeyInput<'k>, RouteError> {
        if !self.numeric {
            return Ok(KeyInput::text(key.as_str()));
        }
        KeyInput::numeric(key.as_str()).ok_or_else(|| RouteError::NotAnInteger {
            key: key.as_str().to_owned(),
        })
    }

    fn place(&self, input: &KeyInput<'_>) -> Placement {
        self.placement(input, self.layout.shard_of(input))
    }

    fn placement(&self, input: &KeyInput<'_>, shard: ShardId) -> Placement {
        let hash = input.hash();
        Placement {
            hash,
            slot: Slot((hash % u64::from(self.slot_count)) as u32),
            shard,
        }
    }
}

/// The range map from `[[routing.ranges]]`, bounds parsed as integers under
/// `routing.numeric`.
fn range_map(routing: &RoutingSettings, shards: u32) -> Result<RangeMap, LayoutError> {
    let bad = |m: String| LayoutError(format!("routing.ranges: {m}"));
    let bound = |i: usize, field: &str, text: &Option<String>| -> Result<_, LayoutError> {
        let Some(text) = text else { return Ok(None) };
        if !routing.numeric {
            return Ok(Some(Bound::Text(text.clone())));
        }
        let n = text.trim().parse::<i64>().map_err(|_| {
            bad(format!(
                "range {i} {field} {text:?} is not an integer (routing.numeric is on)"
            ))
        })?;
        Ok(Some(Bound::Number(n)))
    };
    let ranges = routing
        .ranges
        .iter()
        .enumerate()
        .map(|(i, r)| {
            Ok(KeyRange {
                from: bound(i, "from", &r.from)?,
                to: bound(i, "to", &r.to)?,
                shard: ShardId(r.shard),
            })
        })
        .collect::<Result<Vec<_>, LayoutError>>()?;
    RangeMap::new(&ranges, routing.numeric, shards).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::RangeSettings;

    impl Router {
        fn new(routing: &RoutingSettings, slot_ranges: &[Vec<(u32, u32)>]) -> Self {
            Self::try_new(routing, slot_ranges).unwrap()
        }

        /// Where a key that must route lives.
        fn locate(&self, key: &ShardKey) -> Placement {
            self.route(key.clone()).unwrap().placement()
        }

        fn shard_for(&self, key: &ShardKey) -> ShardId {
            self.locate(key).shard
        }
    }

    fn router(shards: usize) -> Router {
        let routing = RoutingSettings {
            strategy: Strategy::Slots,
            slot_count: 1024,
            ..RoutingSettings::default()
        };
        Router::new(&routing, &vec![Vec::new(); shards])
    }

    fn key(s: &str) -> ShardKey {
        ShardKey::parse(s).unwrap()
    }

    /// Fixed vectors: if any of these change, data written by an earlier release would
    /// be looked for on the wrong shard. Never update them to make a test pass.
    #[test]
    fn hash_is_xxh3_64_fixed_vectors() {
        assert_eq!(key_hash(b""), 0x2d06800538d394c2);
        assert_eq!(key_hash(b"a"), 0xe6c632b61e964e1f);
        assert_eq!(key_hash(b"user_123"), 0x6b32cffc057a0d5d);
        let placed: Vec<(u32, u32)> = ["user_123", "@alice:matrix.org", "42", "order-9", "user_2"]
            .iter()
            .map(|k| {
                let p = router(3).locate(&key(k));
                (p.slot.0, p.shard.0)
            })
            .collect();
        assert_eq!(placed, FIXED_PLACEMENTS);
    }

    /// (slot, shard) for the keys above with 1024 slots over 3 shards, computed with an
    /// independent XXH3 implementation (Python `xxhash.xxh3_64_intdigest`).
    const FIXED_PLACEMENTS: [(u32, u32); 5] = [(349, 1), (259, 0), (401, 1), (297, 0), (938, 2)];

    #[test]
    fn even_ranges_cover_all_slots_in_order() {
        let r = router(3);
        assert_eq!(r.ranges_of(ShardId(0)), vec![(0, 341)]);
        assert_eq!(r.ranges_of(ShardId(1)), vec![(342, 682)]);
        assert_eq!(r.ranges_of(ShardId(2)), vec![(683, 1023)]);
    }

    #[test]
    fn explicit_ranges_are_honoured() {
        let routing = RoutingSettings {
            strategy: Strategy::Slots,
            slot_count: 8,
            ..RoutingSettings::default()
        };
        let r = Router::new(&routing, &[vec![(0, 1), (6, 7)], vec![(2, 5)]]);
        assert_eq!(r.ranges_of(ShardId(0)), vec![(0, 1), (6, 7)]);
        assert_eq!(r.ranges_of(ShardId(1)), vec![(2, 5)]);
    }

    #[test]
    fn placement_is_deterministic_and_spread() {
        let r = router(3);
        let mut counts = [0u32; 3];
        for i in 0..30_000 {
            let k = key(&format!("user_{i}"));
            let a = r.shard_for(&k);
            assert_eq!(a, r.shard_for(&k));
            counts[a.index()] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "uneven spread: {counts:?}");
        }
    }

    /// Every strategy keeps the slot column `hash % slot_count`, so stored slots never
    /// depend on the strategy.
    #[test]
    fn every_strategy_stores_the_same_virtual_slot() {
        for strategy in [Strategy::Modulo, Strategy::HashRing] {
            let routing = RoutingSettings {
                strategy,
                ..RoutingSettings::default()
            };
            let r = Router::new(&routing, &vec![Vec::new(); 3]);
            assert_eq!(r.locate(&key("user_123")).slot, Slot(349));
            assert_eq!(r.ranges_of(ShardId(0)), vec![]);
            let routed = r.route(key("user_123")).unwrap();
            assert_eq!(r.explain(&routed).placement, r.locate(&key("user_123")));
            assert_eq!(routed.map_version(), MapVersion(0));
        }
        let r = router(3);
        let explained = r.explain(&r.route(key("user_123")).unwrap());
        assert_eq!(explained.decision, Decision::Slot(Slot(349)));
    }

    #[test]
    fn numeric_keys_are_checked_at_the_edge() {
        let routing = RoutingSettings {
            strategy: Strategy::Modulo,
            numeric: true,
            ..RoutingSettings::default()
        };
        let r = Router::new(&routing, &vec![Vec::new(); 3]);
        assert_eq!(r.route(key("41")).unwrap().shard(), ShardId(2));
        assert_eq!(r.route(key("-1")).unwrap().shard(), ShardId(2));
        let err = r.route(key("user_1")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the shard key \"user_1\" is not an integer; routing.numeric is on, so keys must \
             be whole numbers from -9223372036854775808 to 9223372036854775807"
        );
    }

    #[test]
    fn range_bounds_are_parsed_and_checked() {
        let mut routing = RoutingSettings {
            strategy: Strategy::Range,
            numeric: true,
            ranges: vec![
                RangeSettings {
                    shard: 0,
                    from: None,
                    to: Some("1000".into()),
                },
                RangeSettings {
                    shard: 1,
                    from: Some("1000".into()),
                    to: None,
                },
            ],
            ..RoutingSettings::default()
        };
        let r = Router::try_new(&routing, &vec![Vec::new(); 2]).unwrap();
        assert_eq!(r.shard_for(&key("999")), ShardId(0));
        assert_eq!(r.shard_for(&key("1000")), ShardId(1));
        routing.ranges[1].from = Some("1k".into());
        let err = Router::try_new(&routing, &vec![Vec::new(); 2]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "routing.ranges: range 1 from \"1k\" is not an integer (routing.numeric is on)"
        );
    }
}
