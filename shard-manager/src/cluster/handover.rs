//! A shard whose primary is changing hands: requests held, not refused.
//!
//! A primary that answers read-only (SQLSTATE 25006) is one being handed over: drained
//! for a planned switchover (`shard-admin switchover` sets it read-only, then its HA
//! manager stops it and promotes a replica), demoted by its HA manager, or a standby just
//! promoted and not yet writable. Each of these ends with a primary that takes writes, so
//! the first read-only answer opens a **handover** of the shard for `failover.hold_ms`
//! (renewed by each later one). While a shard's handover is open, a request whose primary
//! is read-only or does not answer (the old primary stopped by the promotion) waits for
//! the new one (`cluster::new_primary`) up to the handover's end, even when
//! `failover.write_wait_ms` (the wait for an unplanned outage) is shorter or 0. A primary
//! that stops without a read-only answer first (a crash) opens no handover: its requests
//! wait `write_wait_ms` as before.
//!
//! The wait is bounded three ways: in time (the handover's end), in count (at most
//! `failover.hold_max_requests` requests held at once by this gateway: past it a request
//! is answered at once, as without a handover), and so in bytes (each held request holds
//! at most its body, which `server.max_body_bytes` bounds). What it does is counted for
//! `/metrics` ([`HandoverStats`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::routing::ShardId;

/// How held requests ended, since the gateway started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandoverStats {
    /// Handovers opened (the first read-only answer of a shard's primary after none).
    pub opened: u64,
    /// Requests held now.
    pub held: u64,
    /// Requests that waited and then went to a primary that took them.
    pub released: u64,
    /// Requests that waited to the handover's end and were answered the failure.
    pub timed_out: u64,
    /// Requests answered at once because `hold_max_requests` were held already.
    pub refused_at_bound: u64,
    /// The time every held request spent waiting, in milliseconds.
    pub held_ms: u64,
    /// Writes answered without knowing whether they applied: sent, then the primary
    /// lost under them, and not sent again (no key), or a transaction in doubt.
    pub may_have_committed: u64,
}

/// The shards being handed over and the requests held for them.
#[derive(Debug)]
pub struct Handovers {
    /// How long a handover stays open after its last read-only answer.
    hold: Duration,
    /// How many requests may be held at once.
    max_held: u64,
    /// When each open handover ends.
    until: Mutex<HashMap<ShardId, Instant>>,
    opened: AtomicU64,
    held: AtomicU64,
    released: AtomicU64,
    timed_out: AtomicU64,
    refused_at_bound: AtomicU64,
    held_ms: AtomicU64,
    may_have_committed: AtomicU64,
}

/// One request held: counted while it lives; [`Held::end`] says how it ended.
#[derive(Debug)]
pub struct Held<'a> {
    handovers: &'a Handovers,
    since: Instant,
}

impl Handovers {
    pub fn new(hold: Duration, max_held: u64) -> Self {
        Self {
            hold,
            max_held,
            until: Mutex::new(HashMap::new()),
            opened: AtomicU64::default(),
            held: AtomicU64::default(),
            released: AtomicU64::default(),
            timed_out: AtomicU64::default(),
            refused_at_bound: AtomicU64::default(),
            held_ms: AtomicU64::default(),
            may_have_committed: AtomicU64::default(),
        }
    }

    /// A write was answered without knowing whether it applied (the gateway's answer
    /// says so: `may-have-committed`, `transaction-in-doubt`).
    pub fn answered_may_have_committed(&self) {
        self.may_have_committed.fetch_add(1, Ordering::Relaxed);
    }

    /// `shard`'s primary answered read-only at `now`: its handover is open until
    /// `hold` from now.
    pub fn read_only_seen(&self, shard: ShardId, now: Instant) {
        if self.hold.is_zero() {
            return;
        }
        let mut until = self.until.lock().unwrap_or_else(|e| e.into_inner());
        let end = now + self.hold;
        match until.insert(shard, end) {
            Some(was) if was > now => {}
            _ => {
                self.opened.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%shard, hold_ms = self.hold.as_millis() as u64, "the shard's primary is being handed over: its requests are held");
            }
        }
    }

    /// When `shard`'s handover ends, if it is open at `now`.
    pub fn open_until(&self, shard: ShardId, now: Instant) -> Option<Instant> {
        let until = self.until.lock().unwrap_or_else(|e| e.into_inner());
        until.get(&shard).copied().filter(|end| *end > now)
    }

    /// The shards whose handover is open at `now`, each with how long it has left.
    pub fn open(&self, now: Instant) -> Vec<(ShardId, Duration)> {
        let until = self.until.lock().unwrap_or_else(|e| e.into_inner());
        let mut open: Vec<(ShardId, Duration)> = until
            .iter()
            .filter(|(_, end)| **end > now)
            .map(|(shard, end)| (*shard, *end - now))
            .collect();
        open.sort();
        open
    }

    /// Holds one more request, unless `hold_max_requests` are held already (then
    /// counted as refused at the bound).
    pub fn hold(&self) -> Option<Held<'_>> {
        let taken = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_held).then_some(n + 1)
            });
        if taken.is_err() {
            self.refused_at_bound.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(Held {
            handovers: self,
            since: Instant::now(),
        })
    }

    pub fn stats(&self) -> HandoverStats {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        HandoverStats {
            opened: load(&self.opened),
            held: load(&self.held),
            released: load(&self.released),
            timed_out: load(&self.timed_out),
            refused_at_bound: load(&self.refused_at_bound),
            held_ms: load(&self.held_ms),
            may_have_committed: load(&self.may_have_committed),
        }
    }
}

impl Held<'_> {
    /// The request went on (`released`: to a primary that took it) or gave up at the
    /// handover's end.
    pub fn end(self, released: bool) {
        let counter = match released {
            true => &self.handovers.released,
            false => &self.handovers.timed_out,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // A request whose client hung up is neither: only its wait is counted.
        let h = self.handovers;
        h.held.fetch_sub(1, Ordering::AcqRel);
        let waited = self.since.elapsed().as_millis() as u64;
        h.held_ms.fetch_add(waited, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: ShardId = ShardId(1);

    #[test]
    fn a_read_only_answer_opens_the_shards_handover_for_the_hold_and_renews_it() {
        let h = Handovers::new(Duration::from_secs(15), 10);
        let t0 = Instant::now();
        assert_eq!(h.open_until(S, t0), None, "closed until a read-only answer");
        h.read_only_seen(S, t0);
        assert_eq!(h.open_until(S, t0), Some(t0 + Duration::from_secs(15)));
        assert_eq!(h.open_until(ShardId(0), t0), None, "only that shard's");
        let t1 = t0 + Duration::from_secs(10);
        h.read_only_seen(S, t1);
        assert_eq!(h.open_until(S, t1), Some(t1 + Duration::from_secs(15)));
        assert_eq!(h.stats().opened, 1, "renewed, not opened again");
        assert_eq!(h.open(t1), vec![(S, Duration::from_secs(15))]);
        let later = t1 + Duration::from_secs(15);
        assert_eq!(h.open_until(S, later), None, "over once the hold passed");
        assert_eq!(h.open(later), vec![]);
        h.read_only_seen(S, later);
        assert_eq!(h.stats().opened, 2);
    }

    #[test]
    fn a_zero_hold_opens_nothing() {
        let h = Handovers::new(Duration::ZERO, 10);
        let now = Instant::now();
        h.read_only_seen(S, now);
        assert_eq!(h.open_until(S, now), None);
        assert_eq!(h.stats().opened, 0);
    }

    #[test]
    fn requests_past_the_bound_are_not_held_and_each_end_is_counted() {
        let h = Handovers::new(Duration::from_secs(15), 2);
        let (a, b) = (h.hold().unwrap(), h.hold().unwrap());
        assert!(h.hold().is_none(), "a third is over the bound");
        assert_eq!(h.stats().held, 2);
        a.end(true);
        b.end(false);
        let c = h.hold().expect("room again");
        drop(c);
        let stats = h.stats();
        assert_eq!(
            (
                stats.held,
                stats.released,
                stats.timed_out,
                stats.refused_at_bound
            ),
            (0, 1, 1, 1)
        );
    }
}
