//! Test-only fault points (cargo feature `faults`, which no release build enables): a
//! test arms one on a running cluster and the next operations that reach it fail as a
//! real fault would, at exactly the point that matters.

use std::sync::atomic::{AtomicU32, Ordering};

/// The armed faults of one server.
#[derive(Debug, Default)]
pub struct Faults {
    lose_after_commit: AtomicU32,
    new_timeline_after_commit: AtomicU32,
}

impl Faults {
    /// The next `times` writes on this server commit, then lose their connection before
    /// the answer is read back (the socket is really closed).
    pub fn lose_connection_after_commit(&self, times: u32) {
        self.lose_after_commit.store(times, Ordering::SeqCst);
    }

    /// Whether this write must lose its connection now (counts the fault down).
    pub(crate) fn take_lose_after_commit(&self) -> bool {
        self.lose_after_commit
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// The next `times` writes on this primary behind an address commit, then find the
    /// primary moved on to a newer timeline (its floor raised by one) before they are
    /// answered, as when a promotion behind the address is learnt meanwhile.
    pub fn new_timeline_after_commit(&self, times: u32) {
        self.new_timeline_after_commit
            .store(times, Ordering::SeqCst);
    }

    /// Whether this write must find a newer timeline now (counts the fault down).
    pub(crate) fn take_new_timeline_after_commit(&self) -> bool {
        self.new_timeline_after_commit
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}
