//! A server's queues of requests waiting to leave together, and how many requests each
//! batch carried: point reads (`read_batch`) and single writes committed as one group
//! (`write_batch`) each have theirs.
//!
//! Opportunistic, with no timer: the first request to find no batch under way starts a
//! driver at once, and goes alone; requests that come while a batch is in flight
//! queue, and leave together as soon as it returns.
//!
//! Point reads queue per thread: a thread's reads are batched on that thread's
//! connections and answered there, with no wake-up across threads (a read is cheap for
//! the server, a wake-up is not). Writes share one queue per server: a commit (its
//! round trip, its fsync, its wait for the synchronous standby) costs the machine far
//! more than waking another thread, so groups are made as large as the server's
//! concurrency allows. At 16 clients on two workers and three shards, per-thread
//! queues made groups of 1.6 writes, one queue 2.8, for 17-25% more writes a second
//! (docs/BENCHMARKS.md).

use std::sync::{Arc, Mutex};

use super::batch_sizes::BatchSizes;
use super::per_thread::PerThread;

/// A server's queues of one kind of request (see the module doc).
pub struct Batches<W> {
    queues: Queues<W>,
    /// Batch sizes sent, for `/metrics` ([`Batches::sizes`]).
    pub(super) sizes: BatchSizes,
}

enum Queues<W> {
    /// One per thread: a thread's requests leave on its own connections.
    PerThread(PerThread<Arc<Mutex<Queue<W>>>>),
    /// One for every thread: its batches are driven on the thread of a request in them.
    Shared(Arc<Mutex<Queue<W>>>),
}

impl<W: 'static> Batches<W> {
    /// A queue per thread.
    pub(super) fn per_thread() -> Self {
        Self {
            queues: Queues::PerThread(PerThread::new()),
            sizes: Default::default(),
        }
    }

    /// One queue for every thread.
    pub(super) fn shared() -> Self {
        Self {
            queues: Queues::Shared(Default::default()),
            sizes: Default::default(),
        }
    }
}

pub(super) struct Queue<W> {
    waiting: Vec<W>,
    /// A batch is in flight: new requests wait for the next one.
    driving: bool,
}

impl<W> Default for Queue<W> {
    fn default() -> Self {
        Self {
            waiting: Vec::new(),
            driving: false,
        }
    }
}

fn lock<W>(queue: &Mutex<Queue<W>>) -> std::sync::MutexGuard<'_, Queue<W>> {
    queue.lock().unwrap_or_else(|p| p.into_inner())
}

impl<W: 'static> Batches<W> {
    /// Puts `request` in its queue (this thread's, or the shared one). Returns the queue
    /// when no batch was under way: the caller then starts its driver, which sends
    /// batches until the queue is empty ([`next_batch`], guarded by a [`Handover`]).
    pub(super) fn join(&self, request: W) -> Option<Arc<Mutex<Queue<W>>>> {
        let queue = self.queue();
        let lead = {
            let mut waiting = lock(&queue);
            waiting.waiting.push(request);
            !std::mem::replace(&mut waiting.driving, true)
        };
        lead.then_some(queue)
    }

    /// `request` takes the lead when no batch is under way: it comes back with its
    /// queue, now driven, to be sent alone at once by its caller (counted as a batch of
    /// one), and requests that come meanwhile wait in the queue ([`hand_on`] when it is
    /// done). Otherwise it waits in the queue for the next batch, and None comes back.
    /// Unlike [`join`](Self::join), the leader's batch is its own request only, whatever
    /// other threads queue before it leaves: its caller's task may be dropped (its client
    /// gone) without dropping any other request.
    pub(super) fn lead_or_queue(&self, request: W) -> Option<(W, Arc<Mutex<Queue<W>>>)> {
        let queue = self.queue();
        let mut waiting = lock(&queue);
        if std::mem::replace(&mut waiting.driving, true) {
            waiting.waiting.push(request);
            return None;
        }
        drop(waiting);
        self.sizes.record(1);
        Some((request, queue))
    }

    /// The calling thread's queue, or the shared one.
    fn queue(&self) -> Arc<Mutex<Queue<W>>> {
        match &self.queues {
            Queues::PerThread(queues) => queues.get_or(Default::default),
            Queues::Shared(queue) => Arc::clone(queue),
        }
    }

    /// How many requests each batch carried, so far.
    pub fn sizes(&self) -> &BatchSizes {
        &self.sizes
    }
}

/// What waits in `queue`, to leave now as one batch (counted in `sizes`); None, and the
/// driver is done, when nothing does.
pub(super) fn next_batch<W>(queue: &Mutex<Queue<W>>, sizes: &BatchSizes) -> Option<Vec<W>> {
    let mut queue = lock(queue);
    if queue.waiting.is_empty() {
        queue.driving = false;
        return None;
    }
    let batch = std::mem::take(&mut queue.waiting);
    sizes.record(batch.len());
    Some(batch)
}

/// A group's bound: how many requests, and how many bytes, one batch may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Bound {
    pub(super) requests: usize,
    pub(super) bytes: usize,
}

/// How far into a queue a bounded batch looks for requests that still fit.
const LOOK_AHEAD: usize = 1024;

/// The requests waiting in `queue` that one batch may carry under `bound` (each
/// weighing `bytes`), to leave now (counted in `sizes`); None, and the driver is done,
/// when nothing waits. First fit, oldest first: the oldest always goes, whatever it
/// weighs; a request that would pass the bytes keeps its place, and later ones that fit
/// go past it, unless `same` says one is for what it is for (one record's writes keep
/// their order). So a queue of large requests never holds small ones back by more than
/// a batch. What is not taken keeps its place for the next batch.
pub(super) fn next_bounded<W>(
    queue: &Mutex<Queue<W>>,
    sizes: &BatchSizes,
    bound: Bound,
    bytes: impl Fn(&W) -> usize,
    same: impl Fn(&W, &W) -> bool,
) -> Option<Vec<W>> {
    let mut queue = lock(queue);
    if queue.waiting.is_empty() {
        queue.driving = false;
        return None;
    }
    let mut goes = vec![false; queue.waiting.len()];
    let (mut taken, mut weight) = (0, 0);
    let mut kept: Vec<usize> = Vec::new();
    for (i, request) in queue.waiting.iter().enumerate().take(LOOK_AHEAD) {
        if taken == bound.requests {
            break;
        }
        let w = bytes(request);
        let fits = taken == 0 || weight + w <= bound.bytes;
        if fits && !kept.iter().any(|&k| same(&queue.waiting[k], request)) {
            goes[i] = true;
            taken += 1;
            weight += w;
        } else {
            kept.push(i);
        }
    }
    let (batch, stay): (Vec<_>, Vec<_>) = std::mem::take(&mut queue.waiting)
        .into_iter()
        .zip(goes)
        .partition(|(_, goes)| *goes);
    queue.waiting = stay.into_iter().map(|(w, _)| w).collect();
    let batch: Vec<W> = batch.into_iter().map(|(w, _)| w).collect();
    sizes.record(batch.len());
    Some(batch)
}

/// What `look` finds in the requests waiting in `queue` (the queue stays as it is).
pub(super) fn peek<W, R>(queue: &Mutex<Queue<W>>, look: impl FnOnce(&[W]) -> R) -> R {
    look(&lock(queue).waiting)
}

/// After a leader sent its own request inline (see `write_batch`): whether requests
/// queued meanwhile, which a driver must now send (the queue stays driven); false, and
/// the queue is free again, when none did.
pub(super) fn hand_on<W>(queue: &Mutex<Queue<W>>) -> bool {
    let mut queue = lock(queue);
    if queue.waiting.is_empty() {
        queue.driving = false;
        return false;
    }
    true
}

/// Held by a driver: if it ends other than by emptying its queue (a panic), the queue
/// is cleared and handed on, so a later request starts a new driver. (The requests
/// cleared see their answer's sender dropped.)
pub(super) struct Handover<'a, W>(pub(super) &'a Mutex<Queue<W>>);

impl<W> Drop for Handover<'_, W> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            abandon(self.0);
        }
    }
}

/// A driver that stops before its queue is empty (a panic, its runtime gone): the
/// requests waiting are dropped (each sees its answer's sender gone) and the queue is
/// free, so a later request starts a new driver instead of queueing for ever.
pub(super) fn abandon<W>(queue: &Mutex<Queue<W>>) {
    let mut queue = lock(queue);
    queue.driving = false;
    queue.waiting.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_sends_only_its_own_request_whatever_queues_before_it_leaves() {
        let batches = Arc::new(Batches::<u32>::shared());
        let (lead, queue) = batches.lead_or_queue(1).expect("an idle queue is led");
        assert_eq!(lead, 1);
        // Another worker's requests, queued while the leader is still on its way.
        let other = Arc::clone(&batches);
        let queued = std::thread::spawn(move || (other.lead_or_queue(2), other.lead_or_queue(3)))
            .join()
            .unwrap();
        assert!(
            queued.0.is_none() && queued.1.is_none(),
            "a led queue is joined"
        );
        // The leader is done: the two queued leave together, with a driver.
        assert!(hand_on(&queue));
        assert_eq!(next_batch(&queue, &batches.sizes), Some(vec![2, 3]));
        assert_eq!(next_batch(&queue, &batches.sizes), None);
        let sizes = batches.sizes().snapshot();
        assert_eq!((sizes.batches, sizes.requests), (2, 3));
        // Free again: the next request leads.
        assert_eq!(batches.lead_or_queue(4).map(|(r, _)| r), Some(4));
    }

    #[test]
    fn a_bounded_batch_takes_the_oldest_and_what_fits_past_the_rest() {
        // (record, bytes)
        let batches = Batches::<(char, usize)>::shared();
        let queue = batches.join(('a', 10)).expect("the first request leads");
        for request in [('b', 50), ('c', 10), ('d', 10), ('b', 5), ('e', 10)] {
            assert!(batches.join(request).is_none());
        }
        let bound = Bound {
            requests: 3,
            bytes: 30,
        };
        let take = |q| {
            next_bounded(
                q,
                &batches.sizes,
                bound,
                |w: &(char, usize)| w.1,
                |a, b| a.0 == b.0,
            )
        };
        // a fits; b (50) would pass 30 bytes and waits; c and d go past it.
        assert_eq!(take(&queue), Some(vec![('a', 10), ('c', 10), ('d', 10)]));
        // The oldest goes whatever it weighs; b's second write never passes its first.
        assert_eq!(take(&queue), Some(vec![('b', 50)]));
        assert_eq!(take(&queue), Some(vec![('b', 5), ('e', 10)]));
        assert_eq!(take(&queue), None);
        let sizes = batches.sizes().snapshot();
        assert_eq!((sizes.batches, sizes.requests), (3, 6));
    }

    #[test]
    fn a_leader_with_nothing_queued_frees_its_queue() {
        let batches = Batches::<u32>::shared();
        let (_, queue) = batches.lead_or_queue(1).unwrap();
        assert!(!hand_on(&queue));
        assert!(batches.lead_or_queue(2).is_some());
    }
}
