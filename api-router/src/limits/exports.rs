//! The gateway's cap on exports streaming at once (`server.max_exports`): each holds
//! up to a page per shard and a connection until its client has read it all, so an
//! uncapped gateway could be made to hold N pages for N exports opened and never read.
//! Past the cap an export is refused at once (503 `exports-busy` with `Retry-After`),
//! before any shard is read.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// The gateway's export slots.
#[derive(Debug)]
pub struct ExportSlots {
    slots: Arc<Semaphore>,
    max: usize,
}

/// An export's place under the cap, held by its streaming body for its whole life:
/// freed when the body is dropped (finished, failed, the client gone or cut off).
#[derive(Debug)]
pub struct ExportSlot {
    _permit: OwnedSemaphorePermit,
}

/// Every slot is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this gateway is already streaming {max} exports, its most at once (server.max_exports); retry once one has finished")]
pub struct ExportsBusy {
    pub max: usize,
}

/// `Retry-After` of a refusal, in seconds: an export usually lasts longer than a
/// request, so a client need not come back at once.
pub const EXPORTS_BUSY_RETRY_SECS: u64 = 5;

impl ExportSlots {
    pub fn new(max: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// A slot now, or the refusal (never waits).
    pub fn take(&self) -> Result<ExportSlot, ExportsBusy> {
        match self.slots.clone().try_acquire_owned() {
            Ok(permit) => Ok(ExportSlot { _permit: permit }),
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => {
                Err(ExportsBusy { max: self.max })
            }
        }
    }

    /// Exports streaming now.
    pub fn in_use(&self) -> usize {
        self.max - self.slots.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_taken_until_dropped_and_none_past_the_cap() {
        let slots = ExportSlots::new(2);
        let a = slots.take().unwrap();
        let _b = slots.take().unwrap();
        assert_eq!(slots.in_use(), 2);
        assert_eq!(slots.take().unwrap_err(), ExportsBusy { max: 2 });
        drop(a);
        assert_eq!(slots.in_use(), 1);
        assert!(slots.take().is_ok());
    }
}
