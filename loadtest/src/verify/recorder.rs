//! What verify users share: the run's tag, the table, which records each user owns,
//! and the ledger they all write into.
//!
//! Each user takes a number when it first runs (not goose's index: ours is unique
//! whatever goose does) and owns `records_per_user` records, shard keys
//! `verify-<run>-<user>-<n>`, each holding one record of that id. No other user writes
//! them, and the run tag keeps them apart from any earlier run's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::ledger::{Fate, Ledger, TokenRead};

/// The shared state of the `verify` scenario.
#[derive(Debug)]
pub struct Recorder {
    /// The logical table written (`--verify-table`).
    pub table: String,
    /// Records each user owns (`--verify-records`).
    pub records_per_user: u64,
    next_user: AtomicU64,
    ledger: Mutex<Ledger>,
}

impl Recorder {
    pub fn new(run: &str, table: &str, records_per_user: u64) -> Self {
        Self {
            table: table.to_owned(),
            records_per_user: records_per_user.max(1),
            next_user: AtomicU64::new(0),
            ledger: Mutex::new(Ledger::new(run)),
        }
    }

    /// This run's tag.
    pub fn run(&self) -> String {
        self.with(|l| l.run.clone())
    }

    /// A number for a user that has none yet.
    pub fn next_user(&self) -> u64 {
        self.next_user.fetch_add(1, Ordering::Relaxed)
    }

    /// The shard key (and id) of user `user`'s record `n`.
    pub fn key(&self, run: &str, user: u64, n: u64) -> String {
        format!("verify-{run}-{user}-{n}")
    }

    /// See [`Ledger::sent`].
    pub fn sent(&self, key: &str, seq: u64) {
        self.with(|l| l.sent(&self.table, key, key, seq));
    }

    /// See [`Ledger::answered`]: the answer arrived now.
    pub fn answered(&self, key: &str, seq: u64, fate: Fate) {
        let at = chrono::Utc::now();
        self.with(|l| l.answered(key, seq, fate, at));
    }

    /// See [`Ledger::token_read`].
    pub fn token_read(&self, key: &str, read: TokenRead) {
        self.with(|l| l.token_read(key, read));
    }

    /// A copy of the ledger as it stands (after the run: the whole of it).
    pub fn ledger(&self) -> Ledger {
        self.with(|l| l.clone())
    }

    fn with<T>(&self, f: impl FnOnce(&mut Ledger) -> T) -> T {
        // A user that panicked mid-entry leaves a ledger still worth reading.
        let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut ledger)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_get_their_own_numbers_and_keys() {
        let recorder = Recorder::new("ab12", "users", 0);
        assert_eq!(recorder.records_per_user, 1);
        let (a, b) = (recorder.next_user(), recorder.next_user());
        assert_ne!(a, b);
        assert_eq!(recorder.key("ab12", 3, 1), "verify-ab12-3-1");
        recorder.sent("verify-ab12-3-1", 1);
        let ledger = recorder.ledger();
        assert_eq!(ledger.run, "ab12");
        assert_eq!(ledger.records["verify-ab12-3-1"].table, "users");
    }
}
