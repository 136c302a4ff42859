//! The placement functions Shardgate can route with: each a pure function from a key to
//! a shard, chosen by `routing.strategy`.
//!
//! Every strategy is deterministic (a function of the key and its own settings, no I/O,
//! no clock, no randomness) and states in its module doc how evenly it spreads keys and
//! how many keys move when a shard is added. `tests/strategies` asserts exactly those
//! bounds over 100,000+ seeded random keys.
//!
//! Adding a shard is modelled the way a real rebalance does it, by a pure
//! `with_added_shard()` on each strategy: comparing `shard_of` before and after names
//! every key that moves and where to. `shard-admin plan --add-shard` builds on it.
//!
//! ## Layout
//! - [`slots`]: key → slot → shard through a slot map (Redis Cluster, Citus, Vitess).
//! - [`modulo`]: `hash mod N`, or `id mod N` for integer keys: the learning baseline.
//! - [`ring`]: consistent hashing with virtual nodes and weights.
//! - [`range`]: key ranges to shards, lexicographic or numeric.
//!
//! [`Layout`] is the configured one of the four; [`Sharding`] is what they share.

pub mod modulo;
pub mod range;
pub mod ring;
pub mod slots;

pub use modulo::Modulo;
pub use range::{Bound, KeyRange, RangeError, RangeMap};
pub use ring::HashRing;
pub use slots::SlotMap;

use crate::routing::Strategy;
use crate::routing::{ShardId, Slot};

/// The stable 64-bit hash of a key's bytes: XXH3-64, seed 0.
///
/// A published, platform-independent hash (the xxHash specification), so placement
/// never changes across machines, compilers or releases.
pub fn key_hash(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

/// A key as the strategies see it: its text and hash, computed once, and its integer
/// value when keys are numeric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInput<'a> {
    text: &'a str,
    hash: u64,
    number: Option<i64>,
}

impl<'a> KeyInput<'a> {
    /// A key routed by its bytes.
    pub fn text(text: &'a str) -> Self {
        Self {
            text,
            hash: key_hash(text.as_bytes()),
            number: None,
        }
    }

    /// A key routed by its integer value (`routing.numeric`); `None` when the text is
    /// not a whole number in `i64` (decimal, optional sign, as `i64::from_str` reads it).
    pub fn numeric(text: &'a str) -> Option<Self> {
        let number = text.parse::<i64>().ok()?;
        Some(Self {
            number: Some(number),
            ..Self::text(text)
        })
    }

    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// `xxh3_64` of the key's bytes.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The parsed integer, when the key was built with [`KeyInput::numeric`].
    pub fn number(&self) -> Option<i64> {
        self.number
    }

    /// What numeric strategies divide or compare: the integer, or for a key that is not
    /// one, its hash read as `i64`. Strategies stay total this way; the router rejects
    /// such keys before they are ever placed (see `Router::check`).
    pub fn integer(&self) -> i64 {
        self.number.unwrap_or(self.hash as i64)
    }
}

/// What every placement function offers: a total, pure map from keys to shards, and the
/// same map after a shard is added.
pub trait Sharding {
    /// How many shards keys are spread over (`0..shard_count()`).
    fn shard_count(&self) -> u32;

    /// The shard that holds `key`. Total and deterministic.
    fn shard_of(&self, key: &KeyInput<'_>) -> ShardId;

    /// The placement once shard `ShardId(shard_count())` joins, changed the way this
    /// strategy's rebalance changes it. Each implementation documents which keys move.
    fn with_added_shard(&self) -> Self
    where
        Self: Sized;
}

/// The configured strategy, built from validated settings by `Router`.
#[derive(Debug, Clone)]
pub enum Layout {
    Slots(SlotMap),
    Modulo(Modulo),
    HashRing(HashRing),
    Range(RangeMap),
}

/// Why a key went where it went, in the strategy's own terms (for `/api/shards/locate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// `slot = hash % slot_count`, and the slot map gives the slot to the shard.
    Slot(Slot),
    /// `shard = dividend mod modulus`; the dividend is the hash, or the key's integer
    /// value when `numeric`.
    Modulo { modulus: u32, numeric: bool },
    /// The first ring point at or after the hash (wrapping past the top) is `vnode` of
    /// the shard, at position `point`.
    Ring { point: u64, vnode: u32 },
    /// The key falls in range `index` of the range map.
    Range { index: usize, range: KeyRange },
}

impl Layout {
    /// Which strategy this is, as configured.
    pub fn strategy(&self) -> Strategy {
        match self {
            Self::Slots(_) => Strategy::Slots,
            Self::Modulo(_) => Strategy::Modulo,
            Self::HashRing(_) => Strategy::HashRing,
            Self::Range(_) => Strategy::Range,
        }
    }

    /// The shard for `key` and the strategy's reason.
    pub fn decide(&self, key: &KeyInput<'_>) -> (ShardId, Decision) {
        match self {
            Self::Slots(map) => {
                let slot = map.slot_of(key.hash());
                (map.owner(slot), Decision::Slot(slot))
            }
            Self::Modulo(m) => (
                m.shard_of(key),
                Decision::Modulo {
                    modulus: m.shard_count(),
                    numeric: m.is_numeric(),
                },
            ),
            Self::HashRing(ring) => {
                let (point, shard, vnode) = ring.successor(key.hash());
                (shard, Decision::Ring { point, vnode })
            }
            Self::Range(map) => {
                let index = map.index_of(key);
                let range = map.range(index);
                (range.shard, Decision::Range { index, range })
            }
        }
    }
}

impl Sharding for Layout {
    fn shard_count(&self) -> u32 {
        match self {
            Self::Slots(s) => s.shard_count(),
            Self::Modulo(s) => s.shard_count(),
            Self::HashRing(s) => s.shard_count(),
            Self::Range(s) => s.shard_count(),
        }
    }

    fn shard_of(&self, key: &KeyInput<'_>) -> ShardId {
        match self {
            Self::Slots(s) => s.shard_of(key),
            Self::Modulo(s) => s.shard_of(key),
            Self::HashRing(s) => s.shard_of(key),
            Self::Range(s) => s.shard_of(key),
        }
    }

    fn with_added_shard(&self) -> Self {
        match self {
            Self::Slots(s) => Self::Slots(s.with_added_shard()),
            Self::Modulo(s) => Self::Modulo(s.with_added_shard()),
            Self::HashRing(s) => Self::HashRing(s.with_added_shard()),
            Self::Range(s) => Self::Range(s.with_added_shard()),
        }
    }
}
