//! One time slot of detail: counters and latency histograms broken down by endpoint,
//! shard, role and outcome.
//!
//! The same type accumulates a stripe's current second, holds a 5 s or 60 s slot of
//! the timeline, and collects a report's window, so merging is one function.
//! Per-label cells are allocated the first time a label appears and then reused when
//! the slot is cleared, so steady-state recording allocates nothing.

use crate::recording::labels::{OUTCOMES, ROLES};
use crate::recording::latency::Latency;
use crate::recording::sample::OpKind;

/// A request reduced to label indices and numbers, computed before any lock is taken.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Point {
    pub(crate) endpoint: usize,
    pub(crate) method: usize,
    /// Shard slot (see [`crate::recording::labels::shard_slot`]), if the request reached
    /// a shard.
    pub(crate) shard: Option<usize>,
    pub(crate) role: usize,
    /// 0 for success, `1 + ErrorClass::index()` otherwise.
    pub(crate) outcome: usize,
    pub(crate) kind: OpKind,
    pub(crate) micros: u64,
    pub(crate) rows_written: u64,
    pub(crate) rows_read: u64,
}

impl Point {
    pub(crate) fn is_error(&self) -> bool {
        self.outcome != 0
    }
}

/// Plain counters, cheap enough to keep both per slot and since start.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Counts {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) errors_by_class: [u64; 4],
    pub(crate) rows_written: u64,
    pub(crate) rows_read: u64,
    pub(crate) cache: [u64; 5],
}

impl Counts {
    pub(crate) fn record(&mut self, point: &Point) {
        self.requests += 1;
        self.rows_written += point.rows_written;
        self.rows_read += point.rows_read;
        if let Some(class) = point.outcome.checked_sub(1) {
            self.errors += 1;
            self.errors_by_class[class] += 1;
        }
    }

    pub(crate) fn merge(&mut self, other: &Counts) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.rows_written += other.rows_written;
        self.rows_read += other.rows_read;
        add_arrays(&mut self.errors_by_class, &other.errors_by_class);
        add_arrays(&mut self.cache, &other.cache);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.requests == 0 && self.cache.iter().all(|&n| n == 0)
    }
}

fn add_arrays<const N: usize>(mine: &mut [u64; N], theirs: &[u64; N]) {
    for (a, b) in mine.iter_mut().zip(theirs) {
        *a += b;
    }
}

/// Requests to one endpoint in a slot.
#[derive(Clone, Default)]
pub(crate) struct EndpointCell {
    pub(crate) errors: u64,
    pub(crate) latency: Latency,
}

/// Requests to one shard in a slot.
#[derive(Clone, Default)]
pub(crate) struct ShardCell {
    pub(crate) reads: u64,
    pub(crate) writes: u64,
    pub(crate) errors: u64,
    pub(crate) rows_written: u64,
    pub(crate) rows_read: u64,
    pub(crate) roles: [u64; 4],
    pub(crate) latency: Latency,
}

/// Counters and histograms for one span of time.
#[derive(Clone)]
pub(crate) struct Slot {
    pub(crate) counts: Counts,
    pub(crate) overall: Latency,
    pub(crate) by_role: [Option<Box<Latency>>; ROLES.len()],
    pub(crate) by_outcome: [Option<Box<Latency>>; OUTCOMES.len()],
    /// Indexed by endpoint index; the last cell is `"other"`.
    pub(crate) endpoints: Box<[Option<Box<EndpointCell>>]>,
    /// Indexed by shard slot; the last cell is `"other"`.
    pub(crate) shards: Box<[Option<Box<ShardCell>>]>,
}

/// The cell behind `cell`, allocated on first use.
fn cell<T: Default>(cell: &mut Option<Box<T>>) -> &mut T {
    cell.get_or_insert_with(Box::default)
}

impl Slot {
    /// An empty slot with room for `endpoints` named endpoints and `shards` named
    /// shards, each plus one overflow cell.
    pub(crate) fn new(endpoints: usize, shards: usize) -> Self {
        Self {
            counts: Counts::default(),
            overall: Latency::new(),
            by_role: Default::default(),
            by_outcome: Default::default(),
            endpoints: (0..=endpoints).map(|_| None).collect(),
            shards: (0..=shards).map(|_| None).collect(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Counts one request; the hot path, five histogram records and a few adds.
    pub(crate) fn record(&mut self, point: &Point) {
        let micros = point.micros;
        let error = u64::from(point.is_error());
        self.counts.record(point);
        self.overall.record(micros);
        if let Some(latency) = self.by_role.get_mut(point.role) {
            cell(latency).record(micros);
        }
        if let Some(latency) = self.by_outcome.get_mut(point.outcome) {
            cell(latency).record(micros);
        }
        if let Some(endpoint) = self.endpoints.get_mut(point.endpoint) {
            let endpoint = cell(endpoint);
            endpoint.errors += error;
            endpoint.latency.record(micros);
        }
        let Some(shard) = point.shard.and_then(|s| self.shards.get_mut(s)) else {
            return;
        };
        let shard = cell(shard);
        match point.kind {
            OpKind::Read => shard.reads += 1,
            OpKind::Write => shard.writes += 1,
        }
        shard.errors += error;
        shard.rows_written += point.rows_written;
        shard.rows_read += point.rows_read;
        if let Some(role) = shard.roles.get_mut(point.role) {
            *role += 1;
        }
        shard.latency.record(micros);
    }

    /// Adds every count and histogram of `other` (built with the same caps).
    pub(crate) fn merge(&mut self, other: &Slot) {
        self.counts.merge(&other.counts);
        self.overall.merge(&other.overall);
        merge_cells(&mut self.by_role, &other.by_role, |a, b| a.merge(b));
        merge_cells(&mut self.by_outcome, &other.by_outcome, |a, b| a.merge(b));
        merge_cells(&mut self.endpoints, &other.endpoints, |a, b| {
            a.errors += b.errors;
            a.latency.merge(&b.latency);
        });
        merge_cells(&mut self.shards, &other.shards, |a, b| {
            a.reads += b.reads;
            a.writes += b.writes;
            a.errors += b.errors;
            a.rows_written += b.rows_written;
            a.rows_read += b.rows_read;
            add_arrays(&mut a.roles, &b.roles);
            a.latency.merge(&b.latency);
        });
    }

    /// Empties the slot, keeping every allocated cell for reuse.
    pub(crate) fn clear(&mut self) {
        self.counts = Counts::default();
        self.overall.clear();
        self.by_role.iter_mut().flatten().for_each(|l| l.clear());
        self.by_outcome.iter_mut().flatten().for_each(|l| l.clear());
        for endpoint in self.endpoints.iter_mut().flatten() {
            endpoint.errors = 0;
            endpoint.latency.clear();
        }
        for shard in self.shards.iter_mut().flatten() {
            shard.reads = 0;
            shard.writes = 0;
            shard.errors = 0;
            shard.rows_written = 0;
            shard.rows_read = 0;
            shard.roles = [0; 4];
            shard.latency.clear();
        }
    }

    /// Number of latency histograms allocated, for the memory bound tests.
    #[cfg(test)]
    pub(crate) fn histograms(&self) -> usize {
        1 + self.by_role.iter().flatten().count()
            + self.by_outcome.iter().flatten().count()
            + self.endpoints.iter().flatten().count()
            + self.shards.iter().flatten().count()
    }
}

/// Merges cells present and non-empty in `theirs` into `mine`, allocating as needed.
fn merge_cells<T: Default + HasCount>(
    mine: &mut [Option<Box<T>>],
    theirs: &[Option<Box<T>>],
    merge: impl Fn(&mut T, &T),
) {
    for (mine, theirs) in mine.iter_mut().zip(theirs) {
        if let Some(theirs) = theirs.as_deref().filter(|t| t.count() > 0) {
            merge(cell(mine), theirs);
        }
    }
}

/// Cells that can tell whether they hold anything worth merging.
pub(crate) trait HasCount {
    fn count(&self) -> u64;
}

impl HasCount for Latency {
    fn count(&self) -> u64 {
        Latency::count(self)
    }
}

impl HasCount for EndpointCell {
    fn count(&self) -> u64 {
        self.latency.count()
    }
}

impl HasCount for ShardCell {
    fn count(&self) -> u64 {
        self.latency.count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(endpoint: usize, shard: Option<usize>, ms: u64) -> Point {
        Point {
            endpoint,
            method: 0,
            shard,
            role: 1,
            outcome: 0,
            kind: OpKind::Read,
            micros: ms * 1000,
            rows_written: 0,
            rows_read: 2,
        }
    }

    #[test]
    fn record_fills_every_breakdown() {
        let mut slot = Slot::new(2, 2);
        slot.record(&point(0, Some(1), 5));
        slot.record(&Point {
            outcome: 3,
            kind: OpKind::Write,
            rows_written: 4,
            ..point(1, Some(1), 7)
        });
        assert_eq!(slot.counts.requests, 2);
        assert_eq!(slot.counts.errors_by_class, [0, 0, 1, 0]);
        let shard = slot.shards[1]
            .as_deref()
            .map(|s| (s.reads, s.writes, s.errors, s.roles));
        assert_eq!(shard, Some((1, 1, 1, [0, 2, 0, 0])));
        assert_eq!(slot.counts.rows_read, 4);
        assert_eq!(slot.histograms(), 1 + 1 + 2 + 2 + 1);
    }

    #[test]
    fn merge_then_clear_keeps_cells_but_not_counts() {
        let mut a = Slot::new(2, 2);
        let mut b = Slot::new(2, 2);
        a.record(&point(0, None, 1));
        b.record(&point(2, Some(2), 3));
        a.merge(&b);
        assert_eq!(a.counts.requests, 2);
        assert_eq!(a.shards[2].as_deref().map(|s| s.reads), Some(1));
        let cells = a.histograms();
        a.clear();
        assert!(a.is_empty());
        assert_eq!(a.histograms(), cells);
        assert_eq!(a.shards[2].as_deref().map(|s| s.latency.count()), Some(0));
    }
}
