//! A Zipf sampler: rank 0 is the hottest key, rank `k` is drawn with probability
//! proportional to `1 / (k + 1)^s`.
//!
//! Rejection-inversion (Hörmann and Derflinger, "Rejection-inversion to generate variates
//! from monotone discrete distributions", 1996), as Apache Commons RNG and `rand_distr`
//! implement it: constant memory and time whatever the key space, so `--keys 100000000`
//! costs nothing up front. Pure and deterministic for a given random source.

use rand::Rng;

/// Draws ranks `0..n` with Zipf exponent `s` (`s > 0`; larger is more skewed).
#[derive(Debug, Clone, Copy)]
pub struct Zipf {
    /// Number of ranks, at least 1.
    n: f64,
    /// The exponent.
    s: f64,
    /// `H(1.5) - 1`: the upper end of the inverted integral.
    h_integral_x1: f64,
    /// `H(n + 0.5)`: the lower end of the inverted integral.
    h_integral_n: f64,
    /// Acceptance shortcut: a candidate this close to its rank is accepted at once.
    shortcut: f64,
}

impl Zipf {
    /// A sampler over `n` ranks (`n >= 1`) with exponent `s` (finite, `> 0`).
    pub fn new(n: u64, s: f64) -> Self {
        debug_assert!(n >= 1 && s.is_finite() && s > 0.0);
        let n = n.max(1) as f64;
        let h_integral_x1 = h_integral(1.5, s) - 1.0;
        let h_integral_n = h_integral(n + 0.5, s);
        let shortcut = 2.0 - h_integral_inverse(h_integral(2.5, s) - h(2.0, s), s);
        Self {
            n,
            s,
            h_integral_x1,
            h_integral_n,
            shortcut,
        }
    }

    /// One rank in `0..n`.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        loop {
            let u: f64 = rng.random();
            let u = self.h_integral_n + u * (self.h_integral_x1 - self.h_integral_n);
            let x = h_integral_inverse(u, self.s);
            // Ranks are 1-based in the paper; clamp what rounding may push out.
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.shortcut || u >= h_integral(k + 0.5, self.s) - h(k, self.s) {
                return k as u64 - 1;
            }
        }
    }
}

/// `h(x) = x^-s`, the unnormalised density.
fn h(x: f64, s: f64) -> f64 {
    (-s * x.ln()).exp()
}

/// `H(x)`, an integral of `h`: `(x^(1-s) - 1) / (1 - s)`, or `ln x` when `s = 1`.
fn h_integral(x: f64, s: f64) -> f64 {
    let log_x = x.ln();
    expm1_over_x((1.0 - s) * log_x) * log_x
}

/// The inverse of [`h_integral`].
fn h_integral_inverse(x: f64, s: f64) -> f64 {
    // Rounding can push t just below -1, where ln(1 + t) is undefined.
    let t = (x * (1.0 - s)).max(-1.0);
    (ln1p_over_x(t) * x).exp()
}

/// `ln(1 + x) / x`, continuous at 0.
fn ln1p_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x - 1) / x`, continuous at 0.
fn expm1_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    fn counts(n: u64, s: f64, draws: usize, seed: u64) -> Vec<u64> {
        let zipf = Zipf::new(n, s);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut counts = vec![0u64; n as usize];
        for _ in 0..draws {
            counts[zipf.sample(&mut rng) as usize] += 1;
        }
        counts
    }

    #[test]
    fn rank_zero_is_far_hotter_than_the_median() {
        let c = counts(1000, 1.0, 200_000, 7);
        // Around the median, averaged over eleven ranks to steady the estimate.
        let median: f64 = c[495..=505].iter().sum::<u64>() as f64 / 11.0;
        // Expected ratio is 500; demand a comfortable 100.
        assert!(
            c[0] as f64 > 100.0 * median,
            "rank 0 drawn {} times, ranks near the median {median} on average",
            c[0]
        );
    }

    #[test]
    fn frequencies_follow_the_power_law() {
        // P(0) / P(1) = 2^s.
        for s in [0.5, 1.0, 1.5] {
            let c = counts(100, s, 400_000, 11);
            let ratio = c[0] as f64 / c[1] as f64;
            let expected = 2f64.powf(s);
            assert!(
                (ratio / expected - 1.0).abs() < 0.05,
                "s = {s}: P(0)/P(1) measured {ratio:.3}, expected {expected:.3}"
            );
        }
    }

    #[test]
    fn every_draw_is_in_range() {
        for (n, s) in [(1, 1.0), (2, 0.3), (3, 5.0), (1_000_000_000, 1.2)] {
            let zipf = Zipf::new(n, s);
            let mut rng = StdRng::seed_from_u64(3);
            for _ in 0..10_000 {
                let k = zipf.sample(&mut rng);
                assert!(k < n, "n = {n}, s = {s}: drew {k}");
            }
        }
    }

    #[test]
    fn a_single_rank_is_always_drawn() {
        let c = counts(1, 2.0, 1000, 1);
        assert_eq!(c, vec![1000]);
    }

    #[test]
    fn same_seed_same_draws() {
        let zipf = Zipf::new(10_000, 0.99);
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..100).map(|_| zipf.sample(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
    }
}
