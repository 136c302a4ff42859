//! Shared cache epochs: one per shard, stored on the shard's primary (migration
//! `cache_epoch`). Every gateway builds the shard's cache keys from it, so all share one
//! key space, and moving it makes every older entry of the shard unreachable for all.
//!
//! Who moves it: a writer that committed but could not update Redis raises it on the
//! primary before acknowledging (`UPDATE ... RETURNING epoch`, then the WAL position read
//! after that commit) and adopts the result at once. Every gateway reads the epoch with
//! each health check of the primary, in the statement that reads its WAL position, and
//! every write reads it after its commit with the position for its token.
//!
//! Why nothing older than an acknowledged write is served from a newer epoch: a gateway
//! adopts an epoch only together with a primary position read after the epoch was
//! raised, and raises the shard's fence (`fence`) to it first, so its readers install
//! into that epoch only what a server had applied up to there. A raise commits after the
//! write that asked for it; and a write that read an older epoch after its commit
//! committed before the raise was visible, so before that position too.
//!
//! What a gateway does not know, it does not guess: until it has read a shard's epoch,
//! and once its last reading is older than one check interval plus one check timeout
//! (the primary stopped answering its checks), reads of that shard bypass the cache.
//! A gateway that could raise neither Redis nor the epoch *owes* the raise: its reads of
//! the shard bypass the cache, and its monitor retries the raise with every check.
//!
//! A gateway that has not yet been listed among the gateways (`hold_until_listed`) is
//! one a mover cannot tell of a retired epoch through Redis, since the mover reads the
//! prefixes to tell from that list. So until it is listed, and for readings sent
//! before it was, it does not know any epoch: its reads bypass the cache. A raise the
//! mover made before reading the list is then in every reading the gateway uses.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use super::fence::{Fence, Fences};
use super::{Cache, Epoch};
use crate::routing::ShardId;
use crate::wal::Lsn;

/// Raises a shard's epoch on its primary: the new epoch and the primary's WAL position
/// read after that commit; None when the primary could not be reached.
pub type EpochStore = Box<dyn Fn(ShardId) -> BoxFuture<'static, Option<(u64, Lsn)>> + Send + Sync>;

/// What this gateway knows of one shard's epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Read from the shard (sent at `read`).
    Known { n: u64, read: Instant },
    /// Raising it failed after a write that Redis did not take (at `since`): only a
    /// raise sent after that settles it.
    Owed { since: Instant },
}

/// What an observation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// The first reading.
    First,
    /// Nothing moved (the reading is fresher).
    Same,
    /// The shard moved to a newer epoch: another gateway abandoned the old keys.
    Moved { from: u64 },
    /// Older than what is known, or a raise is owed.
    Ignored,
}

/// The epochs this gateway knows, and how to raise the stored ones.
pub struct Epochs {
    states: Mutex<HashMap<ShardId, State>>,
    /// How long a reading stays current (see the module doc).
    valid_for: Duration,
    store: OnceLock<EpochStore>,
    /// Readings count only once this gateway is listed (see the module doc).
    hold: AtomicBool,
    /// When it was first listed: readings sent before then are not used.
    listed_at: OnceLock<Instant>,
}

impl Epochs {
    pub fn new(valid_for: Duration) -> Self {
        Self {
            states: Mutex::new(HashMap::new()),
            valid_for,
            store: OnceLock::new(),
            hold: AtomicBool::new(false),
            listed_at: OnceLock::new(),
        }
    }

    /// From now on no reading counts until `listed` is called, and none sent before it.
    pub fn hold_until_listed(&self) {
        self.hold.store(true, Ordering::Release);
    }

    /// This gateway was listed among the gateways before `at` (the first call counts).
    pub fn listed(&self, at: Instant) {
        let _ = self.listed_at.set(at);
    }

    /// Whether a reading sent at `read` may be used.
    fn counts(&self, read: Instant) -> bool {
        if !self.hold.load(Ordering::Acquire) {
            return true;
        }
        self.listed_at.get().is_some_and(|at| read >= *at)
    }

    /// Installs how to reach the shards (done once, by the cluster that owns them).
    pub fn connect(&self, store: EpochStore) {
        let _ = self.store.set(store);
    }

    fn states(&self) -> std::sync::MutexGuard<'_, HashMap<ShardId, State>> {
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The epoch to read with, if this gateway knows it and the reading is current.
    pub fn get(&self, shard: ShardId) -> Option<u64> {
        match self.states().get(&shard) {
            Some(State::Known { n, read })
                if read.elapsed() <= self.valid_for && self.counts(*read) =>
            {
                Some(*n)
            }
            _ => None,
        }
    }

    /// Whether this gateway owes `shard` a raise (its monitor retries it).
    pub fn owes(&self, shard: ShardId) -> bool {
        matches!(self.states().get(&shard), Some(State::Owed { .. }))
    }

    /// The shard said its epoch is `stored`, with the primary's position `at` read in
    /// the same statement, sent at `read`. A new epoch is adopted behind a fence at
    /// `at` (even the first: entries there may predate a write that raised it).
    pub fn observe(
        &self,
        shard: ShardId,
        stored: u64,
        at: Lsn,
        read: Instant,
        fences: &Fences,
    ) -> Observed {
        let mut states = self.states();
        let (next, observed) = match states.get(&shard).copied() {
            Some(State::Owed { .. }) => return Observed::Ignored,
            None => (stored, Observed::First),
            Some(State::Known { n, read: last }) if n == stored => {
                let state = State::Known {
                    n,
                    read: last.max(read),
                };
                states.insert(shard, state);
                return Observed::Same;
            }
            Some(State::Known { n, .. }) if n > stored => return Observed::Ignored,
            Some(State::Known { n, .. }) => (stored, Observed::Moved { from: n }),
        };
        fences.raise(shard, Fence::At(at));
        states.insert(shard, State::Known { n: next, read });
        observed
    }

    /// Raises the shard's stored epoch and adopts the result behind a fence at the
    /// position read after it. Returns false, and owes the raise (reads bypass), when the
    /// shard could not be reached.
    pub async fn raise(&self, shard: ShardId, fences: &Fences) -> bool {
        let sent = Instant::now();
        let raised = match self.store.get() {
            Some(store) => store(shard).await,
            None => None,
        };
        let mut states = self.states();
        let Some((stored, at)) = raised else {
            // Settled only by a raise sent after every write that owes one.
            let since = match states.get(&shard) {
                Some(State::Owed { since }) => (*since).max(sent),
                _ => sent,
            };
            states.insert(shard, State::Owed { since });
            return false;
        };
        fences.raise(shard, Fence::At(at));
        let next = match states.get(&shard).copied() {
            // Sent before a failure that owes a raise: past this caller's write (it
            // committed before), not necessarily past that one.
            Some(State::Owed { since }) if sent < since => return true,
            Some(State::Known { n, .. }) => n.max(stored),
            _ => stored,
        };
        states.insert(
            shard,
            State::Known {
                n: next,
                read: sent,
            },
        );
        true
    }
}

/// The cache's side: reads use the epoch this gateway knows; the monitor and the
/// writers tell it what the shards say.
impl Cache {
    /// `shard`'s current key epoch; None when this gateway does not know it (not read
    /// yet, its last reading too old, or a raise owed): reads then bypass the cache.
    pub fn epoch(&self, shard: ShardId) -> Option<Epoch> {
        self.epochs.get(shard).map(|n| Epoch { shard, n })
    }

    /// No epoch is used until this gateway is listed among the gateways, where a mover
    /// finds its prefix (see `epochs`).
    pub fn hold_until_listed(&self) {
        self.epochs.hold_until_listed();
    }

    /// This gateway was listed among the gateways before `at`.
    pub fn listed(&self, at: Instant) {
        self.epochs.listed(at);
    }

    /// How to raise the epochs stored on the shards (set by the cluster).
    pub fn connect_epochs(&self, store: EpochStore) {
        self.epochs.connect(store);
    }

    /// The health monitor read `shard`'s stored epoch with the primary's WAL position, in
    /// one statement sent at `read` (`stored` is None on a shard without the migration).
    /// A newer epoch is adopted behind a fence at that position (see `epochs`). If this
    /// gateway owes the shard a raise, it retries it instead.
    pub async fn follow_epoch(&self, shard: ShardId, stored: Option<u64>, at: Lsn, read: Instant) {
        if self.epochs.owes(shard) {
            if self.epochs.raise(shard, &self.fences).await {
                let epoch = self.epochs.get(shard);
                tracing::warn!(%shard, ?epoch, "raised the shard's cache epoch that a failed cache update owed: other gateways drop the old keys with their next check");
            }
            return;
        }
        let Some(stored) = stored else { return };
        if let Observed::Moved { from } = self.epochs.observe(shard, stored, at, read, &self.fences)
        {
            tracing::info!(%shard, from, to = stored, "another gateway moved the shard's cache epoch: old keys dropped");
        }
    }

    /// Abandons the current epoch of each shard (a writer could not update Redis): each
    /// shard's fence goes up to what the caller names, then its epoch is raised on the
    /// shard, for every gateway. Returns the shards that could not be told (their raise
    /// is owed: this gateway's reads bypass, its monitor retries).
    pub(super) async fn abandon_epoch(&self, fences: &[(ShardId, Fence)]) -> Vec<ShardId> {
        for (shard, fence) in fences {
            self.fences.raise(*shard, *fence);
        }
        let mut untold = Vec::new();
        for (shard, _) in fences {
            let told = self.epochs.raise(*shard, &self.fences).await;
            let epoch = self.epochs.get(*shard);
            if let (true, Some(n)) = (told, epoch) {
                // Best effort, once: if Redis answers now (the failure was a passing
                // timeout), every gateway stops reading the old epoch at once rather
                // than within its next check.
                self.retire_below(*shard, n).await;
            }
            if told {
                tracing::warn!(%shard, ?epoch, "cache update failed: raised the shard's cache epoch, so every gateway drops the old keys");
            } else {
                tracing::error!(%shard, "cache update failed and the shard's cache epoch could not be raised: other gateways may serve the previous version until it is (this gateway retries with every check) or their entries expire");
                untold.push(*shard);
            }
        }
        untold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: ShardId = ShardId(0);

    fn epochs() -> (Epochs, Fences) {
        (Epochs::new(Duration::from_secs(60)), Fences::default())
    }

    #[test]
    fn unknown_until_read_and_every_new_epoch_comes_behind_a_fence() {
        let (e, f) = epochs();
        let now = Instant::now();
        assert_eq!(e.get(S), None, "never guessed");
        assert_eq!(e.observe(S, 3, Lsn(100), now, &f), Observed::First);
        assert_eq!(e.get(S), Some(3));
        assert!(!f.allows(S, Lsn(99), |_| None), "first sight is fenced too");
        assert_eq!(e.observe(S, 3, Lsn(500), now, &f), Observed::Same);
        assert!(f.allows(S, Lsn(100), |_| None), "no move, no new fence");
        assert_eq!(e.observe(S, 2, Lsn(600), now, &f), Observed::Ignored);
        assert_eq!(e.get(S), Some(3), "epochs never go back");
        assert_eq!(
            e.observe(S, 5, Lsn(700), now, &f),
            Observed::Moved { from: 3 }
        );
        assert_eq!(e.get(S), Some(5));
        assert!(!f.allows(S, Lsn(699), |_| None));
        assert_eq!(e.get(ShardId(1)), None, "per shard");
    }

    #[test]
    fn held_until_listed_and_no_reading_sent_before_counts() {
        let (e, f) = epochs();
        e.hold_until_listed();
        let before = Instant::now();
        e.observe(S, 3, Lsn(100), before, &f);
        assert_eq!(e.get(S), None, "not listed yet: the cache is bypassed");
        std::thread::sleep(Duration::from_millis(2));
        e.listed(Instant::now());
        assert_eq!(
            e.get(S),
            None,
            "read before the listing: a mover may not have told us"
        );
        e.observe(S, 3, Lsn(200), Instant::now(), &f);
        assert_eq!(e.get(S), Some(3), "read after the listing");
        let (free, f2) = epochs();
        free.observe(S, 1, Lsn(1), before, &f2);
        assert_eq!(free.get(S), Some(1), "no hold asked for: as before");
    }

    #[test]
    fn a_reading_older_than_its_validity_is_not_used() {
        let f = Fences::default();
        let e = Epochs::new(Duration::from_millis(20));
        e.observe(S, 1, Lsn(1), Instant::now(), &f);
        assert_eq!(e.get(S), Some(1));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(e.get(S), None, "the primary stopped answering: bypass");
        e.observe(S, 1, Lsn(2), Instant::now(), &f);
        assert_eq!(e.get(S), Some(1), "a fresh reading brings it back");
    }

    #[tokio::test]
    async fn a_raise_that_fails_is_owed_and_only_a_later_raise_settles_it() {
        let (e, f) = epochs();
        let now = Instant::now();
        e.observe(S, 7, Lsn(10), now, &f);
        assert!(!e.raise(S, &f).await, "no store: not raised");
        assert!(e.owes(S));
        assert_eq!(e.get(S), None, "reads bypass while a raise is owed");
        assert_eq!(
            e.observe(S, 9, Lsn(20), Instant::now(), &f),
            Observed::Ignored,
            "another gateway's raise may predate the write"
        );
        e.connect(Box::new(|_| Box::pin(async { Some((8, Lsn(300))) })));
        assert!(e.raise(S, &f).await);
        assert!(!e.owes(S));
        assert_eq!(e.get(S), Some(8));
        assert!(!f.allows(S, Lsn(299), |_| None), "fenced at the raise");
        assert!(f.allows(S, Lsn(300), |_| None));
    }

    #[tokio::test]
    async fn a_raise_keeps_a_newer_epoch_already_adopted() {
        let (e, f) = epochs();
        e.connect(Box::new(|_| Box::pin(async { Some((4, Lsn(40))) })));
        e.observe(S, 6, Lsn(60), Instant::now(), &f);
        assert!(e.raise(S, &f).await);
        assert_eq!(e.get(S), Some(6));
    }
}
