//! What every simulated user shares: the key space, the bulk batch size, and the
//! counters a scenario keeps beyond goose's own (read-your-writes misses).
//!
//! Built once from the options and handed to each transaction in an `Arc`; no globals.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::keys::KeySpace;

/// Shared, read-only configuration plus atomic counters.
#[derive(Debug)]
pub struct Workload {
    /// Which keys requests touch.
    pub keys: KeySpace,
    /// Records per `bulk-write` request.
    pub batch: usize,
    /// Outcomes of `ryw`'s write-then-read pairs.
    pub ryw: RywCounters,
}

impl Workload {
    pub fn new(keys: KeySpace, batch: usize) -> Self {
        Self {
            keys,
            batch: batch.max(1),
            ryw: RywCounters::default(),
        }
    }
}

/// Read-your-writes bookkeeping: a miss is a read that did not see the version its own
/// write just created (an older version, or no record at all).
#[derive(Debug, Default)]
pub struct RywCounters {
    pairs: AtomicU64,
    misses: AtomicU64,
    with_token: AtomicU64,
}

/// A snapshot of [`RywCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RywTally {
    /// Write-then-read pairs whose read got an answer (200 or 404).
    pub pairs: u64,
    /// Reads that did not see their write.
    pub misses: u64,
    /// Reads that carried an `x-min-lsn` token.
    pub with_token: u64,
}

impl RywCounters {
    /// Records one completed pair.
    pub fn record(&self, saw_write: bool, sent_token: bool) {
        self.pairs.fetch_add(1, Ordering::Relaxed);
        if !saw_write {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        if sent_token {
            self.with_token.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn tally(&self) -> RywTally {
        RywTally {
            pairs: self.pairs.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            with_token: self.with_token.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ryw_counts_pairs_misses_and_tokens() {
        let c = RywCounters::default();
        c.record(true, false);
        c.record(false, false);
        c.record(false, true);
        assert_eq!(
            c.tally(),
            RywTally {
                pairs: 3,
                misses: 2,
                with_token: 1
            }
        );
    }
}
