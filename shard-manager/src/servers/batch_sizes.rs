//! How many requests each batch sent to a server carried: a fixed histogram (powers of
//! two up to 64, then more), cheap to record from any thread, read by `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// The buckets' upper bounds (inclusive); a batch larger than the last is counted in
/// the `+Inf` bucket only.
pub const BOUNDS: [u64; 7] = [1, 2, 4, 8, 16, 32, 64];

/// Batch sizes seen so far.
#[derive(Debug, Default)]
pub struct BatchSizes {
    /// Batches of at most `BOUNDS[i]` requests (and more than the bound before).
    buckets: [AtomicU64; BOUNDS.len()],
    batches: AtomicU64,
    requests: AtomicU64,
}

/// A reading of [`BatchSizes`], cumulative as Prometheus wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSizesSnapshot {
    /// (upper bound, batches of at most that many requests).
    pub cumulative: Vec<(u64, u64)>,
    pub batches: u64,
    pub requests: u64,
}

impl BatchSizes {
    /// One batch of `size` requests was sent.
    pub fn record(&self, size: usize) {
        let size = size as u64;
        if let Some(i) = BOUNDS.iter().position(|b| size <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(size, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> BatchSizesSnapshot {
        let mut total = 0;
        let cumulative = BOUNDS
            .iter()
            .zip(&self.buckets)
            .map(|(bound, n)| {
                total += n.load(Ordering::Relaxed);
                (*bound, total)
            })
            .collect();
        BatchSizesSnapshot {
            cumulative,
            batches: self.batches.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_fall_in_the_smallest_bucket_that_holds_them_and_add_up() {
        let sizes = BatchSizes::default();
        for n in [1, 1, 3, 8, 9, 100] {
            sizes.record(n);
        }
        let s = sizes.snapshot();
        assert_eq!(
            s.cumulative,
            vec![(1, 2), (2, 2), (4, 3), (8, 4), (16, 5), (32, 5), (64, 5)]
        );
        assert_eq!((s.batches, s.requests), (6, 122));
    }
}
