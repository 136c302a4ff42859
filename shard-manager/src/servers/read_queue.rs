//! A server's queues of point reads waiting to leave together, one per thread, and how
//! many reads each batch carried. `read_batch` drives them.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::per_thread::PerThread;
use crate::error::ClusterError;
use crate::store::Record;
use crate::wire::read::PointRead;

pub(super) type Answer = Result<Option<Record>, ClusterError>;

/// A read waiting for its batch.
pub(super) struct Waiting {
    pub(super) read: PointRead,
    pub(super) reply: oneshot::Sender<Answer>,
}

/// A server's queues of point reads, one per thread: a thread's reads are batched on
/// that thread's connections and answered there, with no wake-up across threads.
pub struct ReadBatch {
    queues: PerThread<Arc<Mutex<Queue>>>,
    /// Batch sizes sent, for `/metrics` ([`ReadBatch::sizes`]).
    pub(super) sizes: crate::servers::batch_sizes::BatchSizes,
}

impl Default for ReadBatch {
    fn default() -> Self {
        Self {
            queues: PerThread::new(),
            sizes: Default::default(),
        }
    }
}

#[derive(Default)]
pub(super) struct Queue {
    pub(super) waiting: Vec<Waiting>,
    /// A batch is in flight: new reads wait for the next one.
    pub(super) driving: bool,
}

pub(super) fn lock(queue: &Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(|p| p.into_inner())
}

impl ReadBatch {
    /// This thread's queue.
    pub(super) fn queue(&self) -> Arc<Mutex<Queue>> {
        self.queues.get_or(Default::default)
    }

    /// How many reads each batch carried, so far.
    pub fn sizes(&self) -> &crate::servers::batch_sizes::BatchSizes {
        &self.sizes
    }
}
