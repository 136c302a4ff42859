//! Fixed-size rings of time slots, from which any window up to the maximum is summed.
//!
//! Three rings, because exact histograms for every second would cost too much memory:
//!
//! | ring      | slot  | slots                 | holds                         |
//! |-----------|-------|-----------------------|-------------------------------|
//! | `seconds` | 1 s   | max(window, 60) + 2   | request count only            |
//! | `fine`    | 5 s   | 14 (a minute + slack) | full [`Slot`]: histograms etc |
//! | `coarse`  | 60 s  | max window / 60 + 2   | full [`Slot`]                 |
//!
//! Throughput over 1 s, 10 s, 60 s or any window is exact. Detail (latency, errors,
//! shards, cache) for a window of up to a minute comes from 5 s slots, beyond that
//! from 60 s slots, so its span is the window rounded out to whole slots (reported as
//! `detail_window_secs`). With the default caps a full slot is at most ~44 histograms
//! of 10 KiB, and the rings hold 14 + 17 slots: about 14 MiB in the worst case,
//! 1-5 MiB with a handful of endpoints and shards. Only completed seconds are ever
//! in the rings: stripes flush a second once it is over.

use crate::recording::slot::Slot;

/// Width of a fine slot.
const FINE_SLOT_SECS: u64 = 5;
/// Width of a coarse slot.
const COARSE_SLOT_SECS: u64 = 60;
/// Longest window served from the fine ring.
const FINE_SPAN_SECS: u64 = 60;

/// A ring of [`Slot`]s, each covering `slot_secs` seconds; a slot is reused when its
/// epoch (`second / slot_secs`) falls out of the ring.
struct Ring {
    slot_secs: u64,
    /// Epoch held by each slot, `None` while never used.
    epochs: Vec<Option<u64>>,
    slots: Vec<Slot>,
}

impl Ring {
    fn new(slot_secs: u64, len: usize, endpoints: usize, shards: usize) -> Self {
        Self {
            slot_secs,
            epochs: vec![None; len],
            slots: (0..len).map(|_| Slot::new(endpoints, shards)).collect(),
        }
    }

    /// Adds one second's worth of data. Data older than the ring is dropped: it is
    /// only in the totals.
    fn absorb(&mut self, second: u64, data: &Slot) {
        let epoch = second / self.slot_secs;
        let index = (epoch % self.slots.len() as u64) as usize;
        let (Some(held), Some(slot)) = (self.epochs.get_mut(index), self.slots.get_mut(index))
        else {
            return;
        };
        match *held {
            Some(current) if current == epoch => {}
            Some(newer) if newer > epoch => return,
            _ => {
                slot.clear();
                *held = Some(epoch);
            }
        }
        slot.merge(data);
    }

    /// Every slot in use, with the first second it covers.
    fn held(&self) -> impl Iterator<Item = (u64, &Slot)> {
        self.epochs
            .iter()
            .zip(&self.slots)
            .filter_map(|(epoch, slot)| epoch.map(|e| (e * self.slot_secs, slot)))
            .filter(|(_, slot)| !slot.is_empty())
    }

    /// Merges every slot overlapping seconds `first..now` into `out`; returns the
    /// number of seconds those slots cover up to `now`.
    fn collect(&self, first: u64, now: u64, out: &mut Slot) -> u64 {
        if now == 0 {
            return 0;
        }
        let low = first / self.slot_secs;
        let high = (now - 1) / self.slot_secs;
        for (epoch, slot) in self.epochs.iter().zip(&self.slots) {
            if epoch.is_some_and(|e| (low..=high).contains(&e)) {
                out.merge(slot);
            }
        }
        now - low * self.slot_secs
    }
}

/// Request counts per second, for exact throughput.
struct SecondRing {
    seconds: Vec<Option<u64>>,
    requests: Vec<u64>,
}

impl SecondRing {
    fn new(len: usize) -> Self {
        Self {
            seconds: vec![None; len],
            requests: vec![0; len],
        }
    }

    fn add(&mut self, second: u64, requests: u64) {
        let index = (second % self.seconds.len() as u64) as usize;
        let (Some(held), Some(count)) = (self.seconds.get_mut(index), self.requests.get_mut(index))
        else {
            return;
        };
        match *held {
            Some(current) if current == second => *count += requests,
            Some(newer) if newer > second => {}
            _ => {
                *held = Some(second);
                *count = requests;
            }
        }
    }

    /// `[second, requests]` for every second held.
    fn held(&self) -> impl Iterator<Item = [u64; 2]> + '_ {
        self.seconds
            .iter()
            .zip(&self.requests)
            .filter_map(|(second, &count)| second.map(|s| [s, count]))
            .filter(|[_, count]| *count > 0)
    }

    fn sum(&self, first: u64, now: u64) -> u64 {
        self.seconds
            .iter()
            .zip(&self.requests)
            .filter(|(second, _)| second.is_some_and(|s| (first..now).contains(&s)))
            .map(|(_, count)| count)
            .sum()
    }
}

/// All windowed data of one recorder, behind one lock taken once per second per
/// stripe (flush) and once per report.
pub(crate) struct Timeline {
    seconds: SecondRing,
    fine: Ring,
    coarse: Ring,
}

/// Slots in the fine ring: a minute of 5 s slots, plus one for a window that starts
/// mid-slot and one for a second being filed while a report reads.
fn fine_slots() -> usize {
    FINE_SPAN_SECS.div_ceil(FINE_SLOT_SECS) as usize + 2
}

/// Slots in the coarse ring, with the same slack as the fine one.
fn coarse_slots(max_window_secs: u64) -> usize {
    max_window_secs.div_ceil(COARSE_SLOT_SECS) as usize + 2
}

/// Full [`Slot`]s a timeline holds, for the memory bound.
pub(crate) fn slot_count(max_window_secs: u64) -> usize {
    fine_slots() + coarse_slots(max_window_secs)
}

impl Timeline {
    pub(crate) fn new(max_window_secs: u64, endpoints: usize, shards: usize) -> Self {
        let second_slots = max_window_secs.max(FINE_SPAN_SECS) as usize + 2;
        Self {
            seconds: SecondRing::new(second_slots),
            fine: Ring::new(FINE_SLOT_SECS, fine_slots(), endpoints, shards),
            coarse: Ring::new(
                COARSE_SLOT_SECS,
                coarse_slots(max_window_secs),
                endpoints,
                shards,
            ),
        }
    }

    /// Files a completed second of one stripe into every ring.
    pub(crate) fn absorb(&mut self, second: u64, data: &Slot) {
        self.seconds.add(second, data.counts.requests);
        self.fine.absorb(second, data);
        self.coarse.absorb(second, data);
    }

    /// Requests in the `window` completed seconds before second `now`, and the number
    /// of seconds that span really has (less than `window` right after start).
    pub(crate) fn requests(&self, now: u64, window: u64) -> (u64, u64) {
        let first = now.saturating_sub(window);
        (self.seconds.sum(first, now), now - first)
    }

    /// Merges the detail of the `window` completed seconds before `now` into `out`;
    /// returns the seconds actually covered (see the module docs).
    pub(crate) fn detail(&self, now: u64, window: u64, out: &mut Slot) -> u64 {
        let first = now.saturating_sub(window);
        let ring = if window <= FINE_SPAN_SECS {
            &self.fine
        } else {
            &self.coarse
        };
        ring.collect(first, now, out)
    }
}

/// What a timeline holds, for another gateway's cluster view (see
/// [`crate::cluster::figures`]).
pub(crate) struct Held<'a> {
    /// `[second, requests]`.
    pub(crate) seconds: Vec<[u64; 2]>,
    /// `(first second, slot)` of the 5 s ring.
    pub(crate) fine: Vec<(u64, &'a Slot)>,
    /// `(first second, slot)` of the 60 s ring.
    pub(crate) coarse: Vec<(u64, &'a Slot)>,
}

impl Timeline {
    /// Everything held, borrowed for export.
    pub(crate) fn held(&self) -> Held<'_> {
        Held {
            seconds: self.seconds.held().collect(),
            fine: self.fine.held().collect(),
            coarse: self.coarse.held().collect(),
        }
    }
}

/// Which ring a report's detail comes from, and that ring's slot width: the fine ring
/// up to a minute, the coarse one beyond.
pub(crate) fn detail_slot_secs(window: u64) -> u64 {
    if window <= FINE_SPAN_SECS {
        FINE_SLOT_SECS
    } else {
        COARSE_SLOT_SECS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::sample::OpKind;
    use crate::recording::slot::Point;

    fn second_with(requests: u64) -> Slot {
        let mut slot = Slot::new(1, 1);
        let point = Point {
            endpoint: 0,
            method: 0,
            shard: Some(0),
            role: 0,
            outcome: 0,
            kind: OpKind::Write,
            micros: 1000,
            rows_written: 1,
            rows_read: 0,
        };
        for _ in 0..requests {
            slot.record(&point);
        }
        slot
    }

    fn timeline_with_one_request_per_second(until: u64) -> Timeline {
        let mut timeline = Timeline::new(900, 1, 1);
        for second in 0..until {
            timeline.absorb(second, &second_with(1));
        }
        timeline
    }

    #[test]
    fn exact_counts_over_completed_seconds() {
        let timeline = timeline_with_one_request_per_second(120);
        assert_eq!(timeline.requests(120, 1), (1, 1));
        assert_eq!(timeline.requests(120, 10), (10, 10));
        assert_eq!(timeline.requests(120, 60), (60, 60));
        assert_eq!(timeline.requests(30, 60), (30, 30));
        assert_eq!(timeline.requests(0, 60), (0, 0));
    }

    #[test]
    fn detail_rounds_out_to_whole_slots() {
        let detail = |now, window| {
            let timeline = timeline_with_one_request_per_second(now);
            let mut out = Slot::new(1, 1);
            let covered = timeline.detail(now, window, &mut out);
            (out.counts.requests, covered)
        };
        // Aligned windows are exact.
        assert_eq!(detail(120, 60), (60, 60));
        assert_eq!(detail(120, 10), (10, 10));
        assert_eq!(detail(900, 300), (300, 300));
        // Unaligned ones include the whole first slot, and say so.
        assert_eq!(detail(123, 60), (63, 63));
        assert_eq!(detail(123, 1), (3, 3));
        assert_eq!(detail(930, 300), (330, 330));
        assert_eq!(detail(30, 60), (30, 30));
        assert_eq!(detail(0, 60), (0, 0));
    }

    #[test]
    fn old_slots_are_overwritten_and_late_data_is_dropped() {
        let mut timeline = timeline_with_one_request_per_second(200);
        // Second 10 fell out of the fine ring long ago; only totals keep it.
        timeline.absorb(10, &second_with(5));
        let mut out = Slot::new(1, 1);
        assert_eq!(timeline.detail(200, 60, &mut out), 60);
        assert_eq!(out.counts.requests, 60);
        assert_eq!(timeline.requests(200, 60), (60, 60));
    }

    #[test]
    fn several_stripes_may_file_the_same_second() {
        let mut timeline = Timeline::new(900, 1, 1);
        timeline.absorb(7, &second_with(2));
        timeline.absorb(7, &second_with(3));
        assert_eq!(timeline.requests(8, 1), (5, 1));
        let mut out = Slot::new(1, 1);
        timeline.detail(8, 1, &mut out);
        assert_eq!(out.counts.requests, 5);
    }
}
