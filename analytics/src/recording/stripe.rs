//! Striped accumulation: each recording thread mostly locks its own stripe, so
//! recording is never a contention point; readers merge all stripes.

use std::hash::{Hash, Hasher};

use parking_lot::{Mutex, MutexGuard};

use crate::recording::exemplars::Exemplar;
use crate::recording::labels::FastHash;
use crate::recording::latency::{bucket_slot, Buckets};
use crate::recording::sample::CacheEvent;
use crate::recording::series::SeriesMap;
use crate::recording::slot::{Counts, Point, Slot};
use crate::recording::timeline::Timeline;

/// One independently locked accumulator.
pub(crate) struct Stripe {
    /// The second `current` accumulates, counted from the recorder's start.
    pub(crate) second: u64,
    /// Detail for `second`, moved into the timeline once the second is over.
    pub(crate) current: Slot,
    /// Counts since start, including the unfinished second.
    pub(crate) totals: Counts,
    /// Cumulative Prometheus series.
    pub(crate) series: SeriesMap,
    /// Cumulative Redis round-trip times.
    pub(crate) redis: Buckets,
}

impl Stripe {
    /// Files the accumulated second into `timeline` if `second` is later; a recorder
    /// calls this before recording, a reader before reading, so the timeline holds
    /// every completed second. Lock order is always stripe, then timeline.
    ///
    /// The request that crosses into a new second pays for the flush: two histogram
    /// merges per label value seen in the last second, tens of microseconds, once per
    /// stripe per second. That is the price of keeping the per-request path free of
    /// shared writes; a background flusher would need a thread or a runtime.
    pub(crate) fn advance(&mut self, second: u64, timeline: &Mutex<Timeline>) {
        if second <= self.second {
            return;
        }
        if !self.current.is_empty() {
            timeline.lock().absorb(self.second, &self.current);
            self.current.clear();
        }
        self.second = second;
    }

    /// Records `point`; `exemplar`, when the request was sampled, becomes its
    /// duration bucket's latest.
    pub(crate) fn record(&mut self, point: &Point, exemplar: Option<Exemplar>) {
        self.current.record(point);
        self.totals.record(point);
        let series = self.series.record(point);
        if let Some(exemplar) = exemplar {
            series.exemplars.offer(bucket_slot(point.micros), exemplar);
        }
    }

    pub(crate) fn record_cache(&mut self, event: CacheEvent, redis_micros: Option<u64>) {
        self.current.counts.cache[event.index()] += 1;
        self.totals.cache[event.index()] += 1;
        if let Some(micros) = redis_micros {
            self.redis.observe(micros);
        }
    }
}

/// Keeps each stripe on its own cache lines, so two threads updating neighbouring
/// stripes do not invalidate each other's lines.
#[repr(align(128))]
struct Padded(Mutex<Stripe>);

/// A power-of-two number of stripes.
pub(crate) struct Stripes {
    stripes: Box<[Padded]>,
}

impl Stripes {
    /// `count` must be a power of two (the normalized configuration guarantees it);
    /// `make` builds each stripe.
    pub(crate) fn new(count: usize, make: impl Fn() -> Stripe) -> Self {
        let count = count.max(1).next_power_of_two();
        Self {
            stripes: (0..count).map(|_| Padded(Mutex::new(make()))).collect(),
        }
    }

    /// Locks the calling thread's home stripe, or the next free one if another thread
    /// holds it; blocks only when every stripe is busy.
    ///
    /// The home stripe comes from the thread id, so no global or thread-local state is
    /// needed and several recorders in one process stay independent.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Stripe> {
        let mask = self.stripes.len() - 1;
        let mut hasher = FastHash::default();
        std::thread::current().id().hash(&mut hasher);
        let home = hasher.finish() as usize & mask;
        for step in 0..self.stripes.len() {
            if let Some(guard) = self.stripes[(home + step) & mask].0.try_lock() {
                return guard;
            }
        }
        self.stripes[home].0.lock()
    }

    /// Every stripe, each locked in turn.
    pub(crate) fn each(&self) -> impl Iterator<Item = MutexGuard<'_, Stripe>> {
        self.stripes.iter().map(|padded| padded.0.lock())
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.stripes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::sample::OpKind;

    fn stripe() -> Stripe {
        Stripe {
            second: 0,
            current: Slot::new(1, 1),
            totals: Counts::default(),
            series: SeriesMap::new(16, (1, 7, 1)),
            redis: Buckets::default(),
        }
    }

    fn point() -> Point {
        Point {
            endpoint: 0,
            method: 0,
            shard: None,
            role: 3,
            outcome: 0,
            kind: OpKind::Read,
            micros: 10,
            rows_written: 0,
            rows_read: 0,
        }
    }

    #[test]
    fn advancing_files_the_finished_second_once() {
        let timeline = Mutex::new(Timeline::new(60, 1, 1));
        let mut stripe = stripe();
        stripe.record(&point(), None);
        stripe.record(&point(), None);
        stripe.advance(0, &timeline);
        assert_eq!(timeline.lock().requests(1, 1), (0, 1));
        stripe.advance(1, &timeline);
        stripe.advance(2, &timeline);
        assert_eq!(timeline.lock().requests(2, 2), (2, 2));
        assert_eq!(stripe.totals.requests, 2);
        assert!(stripe.current.is_empty());
    }

    #[test]
    fn a_busy_home_stripe_sends_the_thread_elsewhere() {
        let stripes = Stripes::new(4, stripe);
        let first = stripes.lock();
        let second = stripes.lock();
        assert!(!std::ptr::eq(&*first, &*second));
        assert_eq!(stripes.len(), 4);
    }
}
