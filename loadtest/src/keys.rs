//! Which key a request touches, and the names derived from it.
//!
//! The key space is `0..size`. Key `n` is shard key `user_{n}`; its user record is
//! `users/rec_{n}` and its orders are `orders/ord_{n}_{j}` for `j < ORDERS_PER_KEY`.
//! Everything is derived from `n`, so a read can name a record the prefill (or any
//! earlier run with at least as many keys) wrote, without remembering anything.
//!
//! Keys are drawn uniformly, or Zipf-skewed so that a few hot keys take most of the
//! traffic (key 0 hottest). The hot keys still spread over the shards: a key's shard
//! comes from the hash of `user_{n}`, not from `n`. The Zipf draws are `rand_distr`'s
//! (rejection sampling in constant memory whatever the key space, so `--keys 100000000`
//! costs nothing up front).

use rand::Rng;
use rand_distr::{Distribution, Zipf};

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
    /// Ranks `1..=size` as floats: key `rank - 1`.
    Zipf(Zipf<f64>),
}

impl KeySpace {
    /// `size` keys (at least 1); `skew` 0 draws uniformly, above 0 it is the Zipf exponent
    /// (1.0 is the classic "80/20"-like web workload; larger is hotter).
    pub fn new(size: u64, skew: f64) -> Self {
        let size = size.max(1);
        // Exact as a float up to 2^53 keys; rounding above that only blurs the tail.
        // `rand_distr` refuses only a skew below 0 or not a number: uniform, as 0 is.
        let draw = match Zipf::new(size as f64, skew) {
            Ok(zipf) if skew > 0.0 => Draw::Zipf(zipf),
            _ => Draw::Uniform,
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
            // A whole number in 1..=size; the clamp only guards the float's rounding.
            Draw::Zipf(zipf) => (zipf.sample(rng) as u64).clamp(1, self.size) - 1,
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

    /// How often each key of `size` was drawn in `draws` draws with `skew`, seed `seed`.
    fn counts(size: u64, skew: f64, draws: usize, seed: u64) -> Vec<u64> {
        let keys = KeySpace::new(size, skew);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut counts = vec![0u64; size as usize];
        for _ in 0..draws {
            counts[keys.sample(&mut rng) as usize] += 1;
        }
        counts
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
    fn the_hottest_key_is_drawn_far_more_than_the_hundredth() {
        // P(key 0) / P(key 99) = 100^s: 100 for s = 1.
        let c = counts(1_000, 1.0, 200_000, 7);
        assert!(
            c[0] > 50 * c[99].max(1),
            "key 0 drawn {} times, key 99 {} times",
            c[0],
            c[99]
        );
        // The hotter of two keys is drawn more often.
        assert!(c[0] > c[1] && c[1] > c[2] && c[2] > c[9]);
    }

    #[test]
    fn frequencies_follow_the_power_law() {
        // P(key 0) / P(key 1) = 2^s.
        for skew in [0.5, 1.0, 1.5] {
            let c = counts(100, skew, 400_000, 11);
            let ratio = c[0] as f64 / c[1] as f64;
            let expected = 2f64.powf(skew);
            assert!(
                (ratio / expected - 1.0).abs() < 0.05,
                "skew {skew}: P(0)/P(1) measured {ratio:.3}, expected {expected:.3}"
            );
        }
    }

    #[test]
    fn every_skewed_draw_is_in_range() {
        for (size, skew) in [(1, 1.0), (2, 0.3), (3, 5.0), (1_000_000_000, 1.2)] {
            let keys = KeySpace::new(size, skew);
            let mut rng = StdRng::seed_from_u64(3);
            for _ in 0..10_000 {
                let key = keys.sample(&mut rng);
                assert!(key < size, "size {size}, skew {skew}: drew {key}");
            }
        }
        assert_eq!(counts(1, 2.0, 1_000, 1), vec![1_000]);
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
