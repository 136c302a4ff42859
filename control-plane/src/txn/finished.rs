//! `finished_at` marks of the coordinator log, written in batches off the request path.
//!
//! A mark is kept for the record only: no recovery reads it to decide (a transaction is
//! decided by its `decision`, and a part is resolved by what `pg_prepared_xacts` still
//! holds). So a transaction's answer never waits for it, and one `UPDATE ... WHERE txid
//! = ANY(...)` writes every mark noted within [`FLUSH_EVERY`]: one metadata statement
//! and one fsync for a batch instead of one per transaction. A mark lost (the gateway
//! stopped, the metadata server failed) leaves `finished_at` empty on a row whose parts
//! are all resolved; nothing reads it as undecided.

use std::sync::Mutex;
use std::time::Duration;

/// How long a mark waits for others before its batch is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// At most this many marks wait; more are dropped (the metadata server is not keeping
/// up, and the marks are for the record).
pub const MAX_PENDING: usize = 10_000;

/// The marks noted and not yet written.
#[derive(Debug, Default)]
pub struct Pending {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    txids: Vec<String>,
    /// A flush is scheduled: later marks join it.
    scheduled: bool,
}

impl Pending {
    /// Notes `txid`; true when no flush is scheduled yet and the caller must schedule
    /// one (it then calls [`Pending::take`] after [`FLUSH_EVERY`]).
    pub fn note(&self, txid: &str) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.txids.len() < MAX_PENDING {
            state.txids.push(txid.to_owned());
        }
        !std::mem::replace(&mut state.scheduled, true)
    }

    /// The marks to write now; the next mark schedules a new flush.
    pub fn take(&self) -> Vec<String> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.scheduled = false;
        std::mem::take(&mut state.txids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_mark_schedules_a_flush_and_the_others_join_it() {
        let pending = Pending::default();
        assert!(pending.note("a"));
        assert!(!pending.note("b"));
        assert!(!pending.note("c"));
        assert_eq!(pending.take(), ["a", "b", "c"]);
        assert!(pending.take().is_empty());
        assert!(
            pending.note("d"),
            "after a flush the next mark schedules again"
        );
    }

    #[test]
    fn marks_beyond_the_bound_are_dropped() {
        let pending = Pending::default();
        for n in 0..MAX_PENDING + 5 {
            pending.note(&n.to_string());
        }
        assert_eq!(pending.take().len(), MAX_PENDING);
    }
}
