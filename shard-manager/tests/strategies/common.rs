//! Seeded keys and the measures every strategy is held to.

use std::sync::OnceLock;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shard_manager::routing::strategy::{KeyInput, Sharding};
use shard_manager::ShardId;

/// Keys per measurement.
pub const KEYS_PER_RUN: usize = 100_000;

/// Shard counts the balance bounds are asserted for (N ≤ 10).
pub const SHARD_COUNTS: [u32; 6] = [2, 3, 4, 5, 8, 10];

/// 100,000 random text keys, hashed once per test binary.
pub fn text_keys() -> &'static [KeyInput<'static>] {
    static KEYS: OnceLock<Vec<String>> = OnceLock::new();
    static INPUTS: OnceLock<Vec<KeyInput<'static>>> = OnceLock::new();
    INPUTS.get_or_init(|| as_text(KEYS.get_or_init(|| random_text(1))))
}

/// 100,000 random integers over the whole `i64` range, parsed once per test binary.
pub fn integer_keys() -> &'static [KeyInput<'static>] {
    static KEYS: OnceLock<Vec<String>> = OnceLock::new();
    static INPUTS: OnceLock<Vec<KeyInput<'static>>> = OnceLock::new();
    INPUTS.get_or_init(|| as_numeric(KEYS.get_or_init(|| random_integers(2))))
}

/// Ids `0..100,000`, what an auto-increment column produces, parsed once.
pub fn consecutive_ids() -> &'static [KeyInput<'static>] {
    static KEYS: OnceLock<Vec<String>> = OnceLock::new();
    static INPUTS: OnceLock<Vec<KeyInput<'static>>> = OnceLock::new();
    INPUTS.get_or_init(|| {
        as_numeric(KEYS.get_or_init(|| (0..KEYS_PER_RUN).map(|i| i.to_string()).collect()))
    })
}

/// Half shaped like real ids (`user_8812…`), half 6 to 20 random characters, some of
/// them multi-byte. Long enough that repeats are rare, so loads measure the strategy,
/// not a few heavy keys. Seeded: every run sees the same keys.
fn random_text(seed: u64) -> Vec<String> {
    const CHARS: &[char] = &[
        'a', 'b', 'c', 'k', 'm', 'q', 'z', 'A', 'Q', 'Z', '0', '1', '5', '9', '_', '-', ':', '@',
        '.', 'é', 'ß', '€', '中', '🦀',
    ];
    let mut rng = StdRng::seed_from_u64(seed);
    (0..KEYS_PER_RUN)
        .map(|i| {
            if i % 2 == 0 {
                format!("user_{}", rng.random::<u32>())
            } else {
                let len = rng.random_range(6..=20);
                (0..len)
                    .map(|_| CHARS[rng.random_range(0..CHARS.len())])
                    .collect()
            }
        })
        .collect()
}

fn random_integers(seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..KEYS_PER_RUN)
        .map(|_| rng.random::<i64>().to_string())
        .collect()
}

fn as_text(keys: &[String]) -> Vec<KeyInput<'_>> {
    keys.iter().map(|k| KeyInput::text(k)).collect()
}

fn as_numeric(keys: &[String]) -> Vec<KeyInput<'_>> {
    keys.iter()
        .map(|k| KeyInput::numeric(k).expect("integer key"))
        .collect()
}

/// Keys per shard.
pub fn loads(s: &impl Sharding, keys: &[KeyInput<'_>]) -> Vec<u64> {
    let mut loads = vec![0u64; s.shard_count() as usize];
    for k in keys {
        loads[s.shard_of(k).index()] += 1;
    }
    loads
}

/// The most loaded shard's keys over the mean.
pub fn max_over_mean(loads: &[u64]) -> f64 {
    let mean = loads.iter().sum::<u64>() as f64 / loads.len() as f64;
    *loads.iter().max().unwrap() as f64 / mean
}

/// The worst shard's keys over its weighted fair share.
pub fn max_over_fair(loads: &[u64], weights: &[u32]) -> f64 {
    let total = loads.iter().sum::<u64>() as f64;
    let weight = weights.iter().sum::<u32>() as f64;
    loads
        .iter()
        .zip(weights)
        .map(|(&l, &w)| l as f64 / (total * f64::from(w) / weight))
        .fold(0.0, f64::max)
}

/// What adding a shard did to `keys`.
#[derive(Debug)]
pub struct Movement {
    /// Fraction of keys whose shard changed.
    pub moved: f64,
    /// Keys that moved somewhere other than the new shard.
    pub between_old: usize,
}

pub fn movement<S: Sharding>(before: &S, after: &S, keys: &[KeyInput<'_>]) -> Movement {
    let new = ShardId(before.shard_count());
    assert_eq!(after.shard_count(), before.shard_count() + 1);
    let (mut moved, mut between_old) = (0usize, 0usize);
    for k in keys {
        let (a, b) = (before.shard_of(k), after.shard_of(k));
        if a != b {
            moved += 1;
            if b != new {
                between_old += 1;
            }
        }
    }
    Movement {
        moved: moved as f64 / keys.len() as f64,
        between_old,
    }
}

/// Two independently built copies place every key the same way.
pub fn assert_deterministic<S: Sharding>(a: &S, b: &S, keys: &[KeyInput<'_>]) {
    for k in keys {
        let shard = a.shard_of(k);
        assert!(shard.0 < a.shard_count(), "{k:?} placed on {shard}");
        assert_eq!(shard, b.shard_of(k), "{k:?}");
        assert_eq!(shard, a.shard_of(k), "{k:?}");
    }
}
