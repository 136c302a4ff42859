//! Placement: key → shard, a pure function of the key and the configured strategy
//! ([`crate::strategy`]: `slots`, `modulo`, `hash_ring` or `range`).
//!
//! Every key has a hash, `xxh3_64(key bytes, seed 0)`, and a slot,
//! `hash % slot_count`. Under `slots` the slot decides the shard. Under the other
//! strategies it is a virtual slot that decides nothing but is still stored with every
//! record (the `slot` column), so data movement can be counted per slot whatever the
//! strategy. XXH3-64 is a published, platform-independent hash (the xxHash
//! specification), so placement never changes across machines, compilers or releases.
//! Changing the hash, the seed, the slot count or the strategy would move data: all are
//! fixed for the life of a cluster.

use crate::config::{ConfigError, RoutingSettings, Strategy};
use crate::key::{ShardId, ShardKey, Slot};
use crate::strategy::{
    Bound, Decision, HashRing, KeyInput, KeyRange, Layout, Modulo, RangeMap, Sharding, SlotMap,
};

pub use crate::strategy::key_hash;

/// The routing table. Cheap to clone and to query; no I/O.
#[derive(Debug, Clone)]
pub struct Router {
    layout: Layout,
    /// Slots for the `slot` column (and for placement under `slots`).
    slot_count: u32,
    /// Keys are integers (`routing.numeric`); anything else is refused at the edge.
    numeric: bool,
}

/// Where one key lives, with the intermediate values for people who want to see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Placement {
    /// `xxh3_64` of the key's bytes.
    pub hash: u64,
    /// `hash % slot_count`: the shard's slot under `slots`, the stored virtual slot
    /// under every other strategy.
    pub slot: Slot,
    pub shard: ShardId,
}

/// A placement with the strategy's reasons, for people who want to see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    pub placement: Placement,
    /// The key's integer value when keys are numeric.
    pub number: Option<i64>,
    pub decision: Decision,
}

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
    /// Builds the router from validated settings: `slot_ranges` as
    /// `ClusterSettings::validate` returns them (one entry per shard; explicit slot
    /// ranges under `slots`, all empty otherwise).
    ///
    /// # Panics
    /// If the settings did not pass `ClusterSettings::validate` (which calls
    /// [`Router::try_new`], so validated settings always build).
    pub fn new(routing: &RoutingSettings, slot_ranges: &[Vec<(u32, u32)>]) -> Self {
        Self::try_new(routing, slot_ranges)
            .unwrap_or_else(|e| panic!("{e}; call ClusterSettings::validate before Router::new"))
    }

    /// Builds the router, or says what in the strategy's settings is wrong.
    pub fn try_new(
        routing: &RoutingSettings,
        slot_ranges: &[Vec<(u32, u32)>],
    ) -> Result<Self, ConfigError> {
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
                return Err(ConfigError::Invalid(format!(
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
        })
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

    /// `hash % slot_count`, whatever the strategy.
    pub fn slot_for(&self, key: &ShardKey) -> Slot {
        Slot((key_hash(key.as_bytes()) % u64::from(self.slot_count)) as u32)
    }

    /// Refuses a key the strategy cannot place: with `routing.numeric`, one that is not
    /// an integer. Call once at the edge, where a client's mistake can be answered.
    pub fn check(&self, key: &ShardKey) -> Result<(), RouteError> {
        self.input(key).map(|_| ())
    }

    pub fn shard_for(&self, key: &ShardKey) -> ShardId {
        self.locate(key).shard
    }

    /// Where `key` lives. Total, for keys that passed [`Router::check`]; a non-integer
    /// key under `routing.numeric` is placed by its hash read as an integer, so even a
    /// caller that skipped the check finds the same shard every time.
    pub fn locate(&self, key: &ShardKey) -> Placement {
        let input = self
            .input(key)
            .unwrap_or_else(|_| KeyInput::text(key.as_str()));
        self.place(&input)
    }

    /// Where `key` lives, or why the strategy cannot place it.
    pub fn try_locate(&self, key: &ShardKey) -> Result<Placement, RouteError> {
        Ok(self.place(&self.input(key)?))
    }

    /// [`Router::try_locate`] with the strategy's reasons.
    pub fn explain(&self, key: &ShardKey) -> Result<Explained, RouteError> {
        let input = self.input(key)?;
        let (shard, decision) = self.layout.decide(&input);
        Ok(Explained {
            placement: self.placement(&input, shard),
            number: input.number(),
            decision,
        })
    }

    /// The slot ranges `shard` owns, merged and inclusive, for display. Empty unless the
    /// strategy is `slots`: other strategies do not assign slots to shards.
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
fn range_map(routing: &RoutingSettings, shards: u32) -> Result<RangeMap, ConfigError> {
    let bad = |m: String| ConfigError::Invalid(format!("routing.ranges: {m}"));
    let bound = |i: usize, field: &str, text: &Option<String>| -> Result<_, ConfigError> {
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
        .collect::<Result<Vec<_>, ConfigError>>()?;
    RangeMap::new(&ranges, routing.numeric, shards).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RangeSettings;

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
            let explained = r.explain(&key("user_123")).unwrap();
            assert_eq!(explained.placement, r.locate(&key("user_123")));
        }
        let explained = router(3).explain(&key("user_123")).unwrap();
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
        assert_eq!(r.try_locate(&key("41")).unwrap().shard, ShardId(2));
        assert_eq!(r.try_locate(&key("-1")).unwrap().shard, ShardId(2));
        let err = r.check(&key("user_1")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the shard key \"user_1\" is not an integer; routing.numeric is on, so keys must \
             be whole numbers from -9223372036854775808 to 9223372036854775807"
        );
        // Total anyway: the hash, read as an integer, decides.
        let h = key_hash(b"user_1") as i64;
        assert_eq!(r.locate(&key("user_1")).shard.0, h.rem_euclid(3) as u32);
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
            "invalid configuration: routing.ranges: range 1 from \"1k\" is not an integer \
             (routing.numeric is on)"
        );
    }
}
