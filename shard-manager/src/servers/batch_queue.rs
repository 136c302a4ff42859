//! A server's queues of requests waiting to leave together, one per thread, and how
//! many requests each batch carried: point reads (`read_batch`) and single writes
//! committed as one group (`write_batch`) each have theirs.
//!
//! Opportunistic, with no timer: the first request to find no batch under way starts a
//! driver at once, and goes alone; requests that come while a batch is in flight
//! queue, and leave together as soon as it returns.

use std::sync::{Arc, Mutex};

use super::batch_sizes::BatchSizes;
use super::per_thread::PerThread;

/// A server's queues of one kind of request, one per thread: a thread's requests are
/// batched on that thread's connections and answered there, with no wake-up across
/// threads.
pub struct Batches<W> {
    queues: PerThread<Arc<Mutex<Queue<W>>>>,
    /// Batch sizes sent, for `/metrics` ([`Batches::sizes`]).
    pub(super) sizes: BatchSizes,
}

impl<W: 'static> Default for Batches<W> {
    fn default() -> Self {
        Self {
            queues: PerThread::new(),
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
    /// Puts `request` in this thread's queue. Returns the queue when no batch was under
    /// way: the caller then starts its driver, which sends batches until the queue is
    /// empty ([`next_batch`], guarded by a [`Handover`]).
    pub(super) fn join(&self, request: W) -> Option<Arc<Mutex<Queue<W>>>> {
        let queue = self.queues.get_or(Default::default);
        let lead = {
            let mut waiting = lock(&queue);
            waiting.waiting.push(request);
            !std::mem::replace(&mut waiting.driving, true)
        };
        lead.then_some(queue)
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
            let mut queue = lock(self.0);
            queue.driving = false;
            queue.waiting.clear();
        }
    }
}
