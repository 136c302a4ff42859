//! What every simulated user shares: the key space, the bulk batch size, the
//! counters scenarios keep beyond goose's own (read-your-writes misses, `x-cache`), and
//! the `verify` scenario's ledger.
//!
//! Built once from the options and handed to each transaction in an `Arc`; no globals.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::keys::KeySpace;
use crate::traces::TraceBook;
use crate::verify::Recorder;

/// Shared, read-only configuration plus atomic counters.
#[derive(Debug)]
pub struct Workload {
    /// Which keys requests touch.
    pub keys: KeySpace,
    /// Records per `bulk-write` request.
    pub batch: usize,
    /// Outcomes of `ryw`'s write-then-read pairs.
    pub ryw: RywCounters,
    /// What `read-cached` saw in `x-cache`.
    pub cache: CacheCounters,
    /// `verify`'s owned records and ledger.
    pub verify: Recorder,
    /// Every request's trace context and the slowest requests.
    pub traces: TraceBook,
}

impl Workload {
    pub fn new(keys: KeySpace, batch: usize, verify: Recorder, traces: TraceBook) -> Self {
        Self {
            keys,
            batch: batch.max(1),
            ryw: RywCounters::default(),
            cache: CacheCounters::default(),
            verify,
            traces,
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

/// `x-cache` values on successful reads: the gateway sends `hit`, `miss` or `bypass`
/// when its cache is enabled, and nothing when it is off (or predates it).
#[derive(Debug, Default)]
pub struct CacheCounters {
    hit: AtomicU64,
    miss: AtomicU64,
    bypass: AtomicU64,
    absent: AtomicU64,
}

/// A snapshot of [`CacheCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheTally {
    pub hit: u64,
    pub miss: u64,
    /// `bypass`, or any value this crate does not know.
    pub bypass: u64,
    /// No `x-cache` header.
    pub absent: u64,
}

impl CacheCounters {
    /// Records one read's `x-cache` header.
    pub fn record(&self, header: Option<&str>) {
        let counter = match header {
            Some("hit") => &self.hit,
            Some("miss") => &self.miss,
            Some(_) => &self.bypass,
            None => &self.absent,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn tally(&self) -> CacheTally {
        CacheTally {
            hit: self.hit.load(Ordering::Relaxed),
            miss: self.miss.load(Ordering::Relaxed),
            bypass: self.bypass.load(Ordering::Relaxed),
            absent: self.absent.load(Ordering::Relaxed),
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

    #[test]
    fn cache_headers_are_sorted_into_four_bins() {
        let c = CacheCounters::default();
        for header in [
            Some("hit"),
            Some("hit"),
            Some("miss"),
            Some("bypass"),
            Some("odd"),
            None,
        ] {
            c.record(header);
        }
        assert_eq!(
            c.tally(),
            CacheTally {
                hit: 2,
                miss: 1,
                bypass: 2,
                absent: 1
            }
        );
    }
}
