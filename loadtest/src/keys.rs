//! Which key a request touches, and the names derived from it.
//!
//! The key space is `0..size`. Key `n` is shard key `user_{n}`; its user record is
//! `users/rec_{n}` and its orders are `orders/ord_{n}_{j}` for `j < ORDERS_PER_KEY`.
//! Everything is derived from `n`, so a read can name a record the prefill (or any
//! earlier run with at least as many keys) wrote, without remembering anything.
//!
//! Keys are drawn uniformly, or Zipf-skewed so that a few hot keys take most of the
//! traffic (key 0 hottest). The hot keys still spread over the shards: a key's shard
//! comes from the hash of `user_{n}`, not from `n`.

use rand::Rng;

use crate::zipf::Zipf;

/// Orders each key owns: what `list` reads back and `bulk-write` rewrites.
pub const ORDERS_PER_KEY: u64 = 3;

/// The key space and how keys are drawn from it.
#[derive(Debug, Clone, Copy)]
pub struct KeySpace {
    size: u64,
    draw: Draw,
}

#[derive(Debug, Clone, Copy)]
enum Draw {
    Uniform,
    Zipf(Zipf),
}

impl KeySpace {
    /// `size` keys (at least 1); `skew` 0 draws uniformly, above 0 it is the Zipf exponent
    /// (1.0 is the classic "80/20"-like web workload; larger is hotter).
    pub fn new(size: u64, skew: f64) -> Self {
        let size = size.max(1);
        let draw = if skew > 0.0 {
            Draw::Zipf(Zipf::new(size, skew))
        } else {
            Draw::Uniform
        };
        Self { size, draw }
    }

    /// How many keys there are.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// One key in `0..size`.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        match &self.draw {
            Draw::Uniform => rng.random_range(0..self.size),
            Draw::Zipf(zipf) => zipf.sample(rng),
        }
    }

    /// Human-readable description for the start-up banner.
    pub fn describe(&self) -> String {
        match &self.draw {
            Draw::Uniform => format!("{} keys, uniform", self.size),
            Draw::Zipf(_) => format!("{} keys, Zipf-skewed (key 0 hottest)", self.size),
        }
    }
}

/// The `x-shard-key` of key `n`.
pub fn shard_key(n: u64) -> String {
    format!("user_{n}")
}

/// The id of key `n`'s record in `users`.
pub fn user_id(n: u64) -> String {
    format!("rec_{n}")
}

/// The id of key `n`'s `j`-th record in `orders`.
pub fn order_id(n: u64, j: u64) -> String {
    format!("ord_{n}_{j}")
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn uniform_spreads_evenly() {
        let keys = KeySpace::new(10, 0.0);
        let mut rng = StdRng::seed_from_u64(5);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[keys.sample(&mut rng) as usize] += 1;
        }
        for (key, &count) in counts.iter().enumerate() {
            assert!(
                (9_000..=11_000).contains(&count),
                "key {key} drawn {count} times out of 100000 (expected about 10000)"
            );
        }
    }

    #[test]
    fn skew_makes_key_zero_hot() {
        let keys = KeySpace::new(10_000, 1.1);
        let mut rng = StdRng::seed_from_u64(9);
        let draws = 100_000;
        let hot = (0..draws).filter(|_| keys.sample(&mut rng) == 0).count();
        // Uniform would give key 0 ten draws; Zipf(1.1) over 10k keys about 15%.
        assert!(hot > draws / 20, "key 0 drawn {hot} times out of {draws}");
    }

    #[test]
    fn same_seed_same_keys() {
        for skew in [0.0, 0.8] {
            let keys = KeySpace::new(1_000, skew);
            let draw = |seed| {
                let mut rng = StdRng::seed_from_u64(seed);
                (0..50).map(|_| keys.sample(&mut rng)).collect::<Vec<_>>()
            };
            assert_eq!(draw(1), draw(1), "skew {skew}");
        }
    }

    #[test]
    fn names_are_derived_from_the_key() {
        assert_eq!(shard_key(7), "user_7");
        assert_eq!(user_id(7), "rec_7");
        assert_eq!(order_id(7, 2), "ord_7_2");
    }

    #[test]
    fn an_empty_key_space_becomes_one_key() {
        let keys = KeySpace::new(0, 0.0);
        assert_eq!(keys.size(), 1);
        assert_eq!(keys.sample(&mut StdRng::seed_from_u64(0)), 0);
    }
}
