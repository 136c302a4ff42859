//! Load per slot of the key space: requests, bytes read and written, and the time the
//! shard spent, over 10 s, 1 min and 10 min, in memory fixed by the slot count.
//!
//! The request path adds to atomic counters only: one row of four counters per slot
//! in a ring of 16 one-second buckets. The first request of a second that finds its
//! bucket holding an older second empties it (the others wait the few microseconds
//! that takes). A background fold (every publish round, and before every report)
//! adds each completed second into a ring of 10 s buckets and a ring of 60 s buckets
//! behind a lock no request takes. So:
//!
//! | window | from                    | covers                                 |
//! |--------|-------------------------|----------------------------------------|
//! | 10 s   | the 1 s buckets         | the last 10 completed seconds, exactly |
//! | 1 min  | the 10 s buckets        | whole 10 s buckets, rounded out        |
//! | 10 min | the 60 s buckets        | whole 60 s buckets, rounded out        |
//!
//! Memory: (16 + 8 + 12) buckets × 4 counters × 8 bytes = 1,152 bytes per slot,
//! about 1.1 MiB at the default 1,024 slots. The hottest keys are counted beside it
//! in Space-Saving sketches ([`crate::load::heavy_hitters`]), one per stripe, renewed every
//! minute (the report covers the current minute and the one before).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};
use serde::{Deserialize, Serialize};

use crate::load::heavy_hitters::{merge_top, KeyCount, SpaceSaving};
use crate::recording::labels::FastHash;

/// Seconds the request path's ring holds: 10 for the window, and slack for a fold
/// that runs late.
const SECOND_BUCKETS: usize = 16;
/// A bucket never used.
const NEVER: u64 = u64::MAX;
/// A bucket being emptied for a new second.
const EMPTYING: u64 = u64::MAX - 1;
/// The three windows: their names and lengths in seconds.
pub const WINDOWS: [(&str, u64); 3] = [("10s", 10), ("1m", 60), ("10m", 600)];
/// Counters kept per sketch stripe.
const SKETCH_CAPACITY: usize = 64;
/// Sketch stripes (each behind its own lock; a thread tries its own first).
const SKETCH_STRIPES: usize = 8;
/// How long one generation of the key sketches counts.
const SKETCH_SECS: u64 = 60;

/// One request's load, as the gateway accounts it once the shard answered.
#[derive(Debug, Clone, Copy)]
pub struct SlotHit<'a> {
    /// The slot of the key space the request's key falls in.
    pub slot: u32,
    /// The shard key, for the hottest keys.
    pub key: &'a str,
    /// Bytes the client sent (the request body).
    pub bytes_written: u64,
    /// Bytes the gateway answered with (the response body).
    pub bytes_read: u64,
    /// Time spent waiting for the shard.
    pub shard_time: Duration,
}

/// The four counters of a slot, in the order they are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotCounts {
    /// Requests.
    pub requests: u64,
    /// Bytes answered.
    pub bytes_read: u64,
    /// Bytes received.
    pub bytes_written: u64,
    /// Microseconds the shard spent.
    pub shard_micros: u64,
}

impl SlotCounts {
    fn from_array([requests, bytes_read, bytes_written, shard_micros]: [u64; 4]) -> Self {
        Self {
            requests,
            bytes_read,
            bytes_written,
            shard_micros,
        }
    }

    /// Adds another slot's counts.
    pub fn add(&mut self, other: &SlotCounts) {
        self.requests += other.requests;
        self.bytes_read += other.bytes_read;
        self.bytes_written += other.bytes_written;
        self.shard_micros += other.shard_micros;
    }
}

/// One gateway's load over one window, as published and merged: only slots that saw
/// traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowLoad {
    /// Seconds the window covers (shorter right after start).
    pub secs: u64,
    /// `(slot, counts)` for every slot with a request, by slot.
    pub slots: Vec<(u32, SlotCounts)>,
}

/// One gateway's load per slot and hottest keys: what it publishes for the cluster
/// view, and what `/api/shards/load` is built from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadFigures {
    /// The slot count these slots index.
    pub slot_count: u32,
    /// The windows of [`WINDOWS`], in order.
    pub windows: Vec<WindowLoad>,
    /// The hottest keys counted (up to the sketch's counters, largest first).
    pub hot_keys: Vec<KeyCount>,
    /// Seconds the hot keys were counted over.
    pub hot_keys_secs: u64,
}

impl LoadFigures {
    /// Adds another gateway's figures: counts slot by slot, windows in order, keys
    /// merged as sketches merge.
    pub fn merge(&mut self, other: &LoadFigures) {
        self.slot_count = self.slot_count.max(other.slot_count);
        if self.windows.len() < other.windows.len() {
            self.windows
                .resize_with(other.windows.len(), WindowLoad::default);
        }
        for (mine, theirs) in self.windows.iter_mut().zip(&other.windows) {
            mine.secs = mine.secs.max(theirs.secs);
            let mut slots: std::collections::BTreeMap<u32, SlotCounts> =
                mine.slots.iter().copied().collect();
            for (slot, counts) in &theirs.slots {
                slots.entry(*slot).or_default().add(counts);
            }
            mine.slots = slots.into_iter().collect();
        }
        self.hot_keys = merge_top(self.hot_keys.iter().chain(&other.hot_keys), SKETCH_CAPACITY);
        self.hot_keys_secs = self.hot_keys_secs.max(other.hot_keys_secs);
    }
}

/// One second of the request path's ring.
struct SecondBucket {
    /// The second held, [`NEVER`] or [`EMPTYING`].
    second: AtomicU64,
    /// Four counters per slot.
    counts: Box<[AtomicU64]>,
}

/// A ring of folded buckets, each `width` seconds.
struct FoldRing {
    width: u64,
    epochs: Vec<Option<u64>>,
    /// `epochs.len()` rows of `slots` counters.
    counts: Vec<[u64; 4]>,
}

impl FoldRing {
    fn new(width: u64, len: usize, slots: usize) -> Self {
        Self {
            width,
            epochs: vec![None; len],
            counts: vec![[0; 4]; len * slots],
        }
    }

    fn row(&mut self, second: u64, slots: usize) -> Option<&mut [[u64; 4]]> {
        let epoch = second / self.width;
        let index = (epoch % self.epochs.len() as u64) as usize;
        let held = self.epochs.get_mut(index)?;
        let row = self.counts.get_mut(index * slots..(index + 1) * slots)?;
        match *held {
            Some(e) if e == epoch => {}
            Some(e) if e > epoch => return None,
            _ => {
                row.iter_mut().for_each(|c| *c = [0; 4]);
                *held = Some(epoch);
            }
        }
        Some(row)
    }

    /// Sums the buckets overlapping seconds `first..now` into `out`; returns the
    /// seconds they cover up to `now`.
    fn sum(&self, first: u64, now: u64, slots: usize, out: &mut [[u64; 4]]) -> u64 {
        if now == 0 {
            return 0;
        }
        let low = first / self.width;
        let high = (now - 1) / self.width;
        for (index, epoch) in self.epochs.iter().enumerate() {
            if !epoch.is_some_and(|e| (low..=high).contains(&e)) {
                continue;
            }
            let row = &self.counts[index * slots..(index + 1) * slots];
            for (sum, counts) in out.iter_mut().zip(row) {
                add4(sum, counts);
            }
        }
        now - low * self.width
    }
}

fn add4(sum: &mut [u64; 4], counts: &[u64; 4]) {
    for (a, b) in sum.iter_mut().zip(counts) {
        *a += b;
    }
}

/// What the fold owns: the rings no request touches.
struct Folded {
    /// The first second not folded yet.
    next: u64,
    tens: FoldRing,
    minutes: FoldRing,
}

/// One stripe of key sketches: the current minute's and the previous one's.
struct Sketches {
    minute: u64,
    current: SpaceSaving,
    previous: SpaceSaving,
}

/// Keeps each stripe on its own cache lines.
#[repr(align(128))]
struct PaddedSketches(Mutex<Sketches>);

/// Load per slot of one gateway (see the module docs).
pub struct SlotLoad {
    /// False: [`SlotLoad::record`] does nothing (`analytics.load_per_slot = false`).
    counting: bool,
    slots: usize,
    started: Instant,
    seconds: Box<[SecondBucket]>,
    folded: Mutex<Folded>,
    sketches: Box<[PaddedSketches]>,
    key_hasher: RandomState,
}

impl SlotLoad {
    /// Counters for `slot_count` slots (clamped to 1..=65,536), starting now.
    pub fn new(slot_count: u32) -> Self {
        Self::started_at(slot_count, Instant::now())
    }

    /// [`SlotLoad::new`] whose second 0 begins at `started`; the clock seam for tests.
    pub fn started_at(slot_count: u32, started: Instant) -> Self {
        let slots = slot_count.clamp(1, 65_536) as usize;
        let bucket = || SecondBucket {
            second: AtomicU64::new(NEVER),
            counts: (0..slots * 4).map(|_| AtomicU64::new(0)).collect(),
        };
        let sketches = || Sketches {
            minute: 0,
            current: SpaceSaving::new(SKETCH_CAPACITY),
            previous: SpaceSaving::new(SKETCH_CAPACITY),
        };
        Self {
            counting: true,
            slots,
            started,
            seconds: (0..SECOND_BUCKETS).map(|_| bucket()).collect(),
            folded: Mutex::new(Folded {
                next: 0,
                tens: FoldRing::new(10, 8, slots),
                minutes: FoldRing::new(60, 12, slots),
            }),
            sketches: (0..SKETCH_STRIPES)
                .map(|_| PaddedSketches(Mutex::new(sketches())))
                .collect(),
            key_hasher: RandomState::new(),
        }
    }

    /// The same counters, counting only when `counting` (`analytics.load_per_slot`).
    pub fn counting(mut self, counting: bool) -> Self {
        self.counting = counting;
        self
    }

    /// The number of slots counted.
    pub fn slot_count(&self) -> u32 {
        self.slots as u32
    }

    /// Bytes of counters this recorder holds, whatever the traffic.
    pub fn memory_bytes(&self) -> usize {
        (SECOND_BUCKETS + 8 + 12) * 4 * 8 * self.slots + SKETCH_STRIPES * 2 * SKETCH_CAPACITY * 320
    }

    /// Counts one request. Four relaxed atomic adds, and one sketch update under a
    /// lock that is usually the thread's own. A slot past the slot count is ignored.
    pub fn record(&self, hit: &SlotHit<'_>) {
        self.record_at(hit, Instant::now());
    }

    /// [`SlotLoad::record`] for a request that finished at `at`.
    pub fn record_at(&self, hit: &SlotHit<'_>, at: Instant) {
        let slot = hit.slot as usize;
        if !self.counting || slot >= self.slots {
            return;
        }
        let second = self.second_of(at);
        if let Some(bucket) = self.bucket_for(second) {
            let base = slot * 4;
            let micros = u64::try_from(hit.shard_time.as_micros()).unwrap_or(u64::MAX);
            for (i, n) in [1, hit.bytes_read, hit.bytes_written, micros]
                .into_iter()
                .enumerate()
            {
                if let Some(counter) = bucket.counts.get(base + i) {
                    counter.fetch_add(n, Ordering::Relaxed);
                }
            }
        }
        let hash = self.key_hasher.hash_one(hit.key);
        let mut sketches = self.sketch_stripe();
        let minute = second / SKETCH_SECS;
        if minute > sketches.minute {
            let s = &mut *sketches;
            std::mem::swap(&mut s.current, &mut s.previous);
            s.current.clear();
            if minute > s.minute + 1 {
                s.previous.clear();
            }
            s.minute = minute;
        }
        sketches.current.offer(hash, hit.key, hit.slot);
    }

    /// The bucket of `second`, emptied first if it held an older second; `None` for a
    /// second so late that its bucket already holds a newer one.
    fn bucket_for(&self, second: u64) -> Option<&SecondBucket> {
        let bucket = &self.seconds[(second % SECOND_BUCKETS as u64) as usize];
        loop {
            let held = bucket.second.load(Ordering::Acquire);
            if held == second {
                return Some(bucket);
            }
            if held == EMPTYING {
                std::hint::spin_loop();
                continue;
            }
            if held != NEVER && held > second {
                return None;
            }
            if bucket
                .second
                .compare_exchange(held, EMPTYING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                for counter in bucket.counts.iter() {
                    counter.store(0, Ordering::Relaxed);
                }
                bucket.second.store(second, Ordering::Release);
                return Some(bucket);
            }
        }
    }

    fn sketch_stripe(&self) -> MutexGuard<'_, Sketches> {
        let mut hasher = FastHash::default();
        std::thread::current().id().hash(&mut hasher);
        let home = hasher.finish() as usize % self.sketches.len();
        for step in 0..self.sketches.len() {
            let stripe = &self.sketches[(home + step) % self.sketches.len()];
            if let Some(guard) = stripe.0.try_lock() {
                return guard;
            }
        }
        self.sketches[home].0.lock()
    }

    /// Adds every completed second not folded yet into the 10 s and 60 s rings.
    /// Called by the publisher every round and before every report; seconds older
    /// than the 1 s ring are gone (only a fold stalled for 15 s loses any).
    pub fn fold(&self) {
        self.fold_at(Instant::now());
    }

    /// [`SlotLoad::fold`] as seen at `at`.
    pub fn fold_at(&self, at: Instant) {
        let now = self.second_of(at);
        let mut folded = self.folded.lock();
        self.fold_until(&mut folded, now);
    }

    fn fold_until(&self, folded: &mut Folded, now: u64) {
        let first = folded
            .next
            .max(now.saturating_sub(SECOND_BUCKETS as u64 - 1));
        let slots = self.slots;
        let mut row = vec![[0u64; 4]; slots];
        for second in first..now {
            if !self.read_second(second, &mut row) {
                continue;
            }
            for ring in [&mut folded.tens, &mut folded.minutes] {
                if let Some(out) = ring.row(second, slots) {
                    for (sum, counts) in out.iter_mut().zip(&row) {
                        add4(sum, counts);
                    }
                }
            }
        }
        folded.next = folded.next.max(now);
    }

    /// Copies completed second `second` into `row`; false when the ring no longer
    /// (or never) held it.
    fn read_second(&self, second: u64, row: &mut [[u64; 4]]) -> bool {
        let bucket = &self.seconds[(second % SECOND_BUCKETS as u64) as usize];
        if bucket.second.load(Ordering::Acquire) != second {
            return false;
        }
        for (slot, out) in row.iter_mut().enumerate() {
            for (i, value) in out.iter_mut().enumerate() {
                *value = bucket.counts[slot * 4 + i].load(Ordering::Relaxed);
            }
        }
        true
    }

    /// This gateway's figures now: each window's slots with traffic, and the
    /// hottest keys.
    pub fn figures(&self) -> LoadFigures {
        self.figures_at(Instant::now())
    }

    /// [`SlotLoad::figures`] as seen at `at`.
    pub fn figures_at(&self, at: Instant) -> LoadFigures {
        let now = self.second_of(at);
        let slots = self.slots;
        let mut windows = Vec::with_capacity(WINDOWS.len());
        // 10 s: straight from the 1 s ring.
        let first = now.saturating_sub(10);
        let mut sums = vec![[0u64; 4]; slots];
        let mut row = vec![[0u64; 4]; slots];
        for second in first..now {
            if self.read_second(second, &mut row) {
                for (sum, counts) in sums.iter_mut().zip(&row) {
                    add4(sum, counts);
                }
            }
        }
        windows.push(sparse(now - first, &sums));
        let mut folded = self.folded.lock();
        self.fold_until(&mut folded, now);
        for (ring, secs) in [(&folded.tens, 60), (&folded.minutes, 600)] {
            let mut sums = vec![[0u64; 4]; slots];
            let covered = ring.sum(now.saturating_sub(secs), now, slots, &mut sums);
            windows.push(sparse(covered, &sums));
        }
        drop(folded);
        let mut keys = Vec::new();
        let minute = now / SKETCH_SECS;
        for stripe in self.sketches.iter() {
            let sketches = stripe.0.lock();
            if sketches.minute + 1 >= minute {
                keys.extend(sketches.current.counts().cloned());
            }
            if sketches.minute == minute {
                keys.extend(sketches.previous.counts().cloned());
            }
        }
        LoadFigures {
            slot_count: slots as u32,
            windows,
            hot_keys: merge_top(&keys, SKETCH_CAPACITY),
            hot_keys_secs: (now % SKETCH_SECS + SKETCH_SECS).min(now),
        }
    }

    fn second_of(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.started).as_secs()
    }
}

impl std::fmt::Debug for SlotLoad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotLoad")
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

fn sparse(secs: u64, sums: &[[u64; 4]]) -> WindowLoad {
    WindowLoad {
        secs,
        slots: sums
            .iter()
            .enumerate()
            .filter(|(_, c)| c[0] > 0)
            .map(|(slot, c)| (slot as u32, SlotCounts::from_array(*c)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(slot: u32, key: &str) -> SlotHit<'_> {
        SlotHit {
            slot,
            key,
            bytes_written: 10,
            bytes_read: 100,
            shard_time: Duration::from_micros(250),
        }
    }

    fn at(start: Instant, secs: u64) -> Instant {
        start + Duration::from_millis(secs * 1000 + 500)
    }

    #[test]
    fn each_window_counts_what_it_covers() {
        let start = Instant::now();
        let load = SlotLoad::started_at(8, start);
        // Second 0..120: slot 3 once a second; second 115..120: slot 5 twenty times a second.
        for second in 0..120 {
            load.record_at(&hit(3, "steady"), at(start, second));
            if second >= 115 {
                for _ in 0..20 {
                    load.record_at(&hit(5, "burst"), at(start, second));
                }
            }
            load.fold_at(at(start, second));
        }
        let figures = load.figures_at(at(start, 120));
        let get = |w: usize, slot: u32| {
            figures.windows[w]
                .slots
                .iter()
                .find(|(s, _)| *s == slot)
                .map(|(_, c)| *c)
        };
        assert_eq!(figures.windows[0].secs, 10);
        assert_eq!(get(0, 3).map(|c| c.requests), Some(10));
        assert_eq!(get(0, 5).map(|c| c.requests), Some(100));
        let burst = get(0, 5).unwrap_or_default();
        assert_eq!(
            (burst.bytes_read, burst.bytes_written, burst.shard_micros),
            (10_000, 1000, 25_000)
        );
        // 1 min: six whole 10 s buckets (seconds 60..120).
        assert_eq!(figures.windows[1].secs, 60);
        assert_eq!(get(1, 3).map(|c| c.requests), Some(60));
        // 10 min: the two minutes since start.
        assert_eq!(figures.windows[2].secs, 120);
        assert_eq!(get(2, 3).map(|c| c.requests), Some(120));
        assert_eq!(get(2, 5).map(|c| c.requests), Some(100));
        assert_eq!(get(0, 4), None);
        // The sketches cover the minute before (second 60..120: steady 60, burst 100).
        assert_eq!(figures.hot_keys[0].key, "burst");
        assert_eq!(figures.hot_keys[0].count, 100);
        assert_eq!(figures.hot_keys[1].count, 60);
    }

    #[test]
    fn a_reused_bucket_starts_from_zero() {
        let start = Instant::now();
        let load = SlotLoad::started_at(4, start);
        load.record_at(&hit(1, "k"), at(start, 2));
        // Second 18 takes second 2's bucket over (16 buckets).
        load.record_at(&hit(1, "k"), at(start, 18));
        let figures = load.figures_at(at(start, 19));
        assert_eq!(
            figures.windows[0].slots,
            vec![(1, SlotCounts::from_array([1, 100, 10, 250]))]
        );
        // A slot past the count is ignored, not a panic.
        load.record_at(&hit(4, "k"), at(start, 19));
    }

    #[test]
    fn merged_figures_add_slot_by_slot() {
        let start = Instant::now();
        let (a, b) = (
            SlotLoad::started_at(4, start),
            SlotLoad::started_at(4, start),
        );
        for _ in 0..3 {
            a.record_at(&hit(1, "x"), at(start, 1));
        }
        b.record_at(&hit(1, "x"), at(start, 1));
        b.record_at(&hit(2, "y"), at(start, 1));
        let mut merged = a.figures_at(at(start, 5));
        merged.merge(&b.figures_at(at(start, 5)));
        let requests: Vec<_> = merged.windows[0]
            .slots
            .iter()
            .map(|(s, c)| (*s, c.requests))
            .collect();
        assert_eq!(requests, [(1, 4), (2, 1)]);
        assert_eq!(
            (merged.hot_keys[0].key.as_str(), merged.hot_keys[0].count),
            ("x", 4)
        );
    }

    #[test]
    fn memory_is_fixed_by_the_slot_count() {
        assert_eq!(
            SlotLoad::new(1024).memory_bytes(),
            1_179_648 + 8 * 2 * 64 * 320
        );
    }
}
