//! A request whose shard's primary could not take it (down, or read-only: a demoted
//! old primary, or a standby pg_auto_failover has promoted but keeps read-only until
//! the old primary is known to be gone), with nothing sent: it waits, up to
//! `failover.write_wait_ms`, for a primary that takes it. Every [`RETRY_EVERY`] it is
//! tried again on the server the map names (the same one: its HA manager may restart
//! it in place, or let it take writes a moment later), and at once when the map names
//! another or the shard's term rose (the failover watcher records a promotion; every
//! gateway follows the map; behind a service address the address stays and only the
//! term says the primary moved).
//! Past the bound the last failure is answered (503 naming the shard, with
//! `Retry-After`). While the shard's primary is being handed over (it answered
//! read-only: [`super::handover`]) the bound is at least `failover.hold_ms` from when
//! the request began to wait, whatever `write_wait_ms` says.
//!
//! A keyed write whose connection was lost after it was sent (the primary killed under
//! it) waits the same way and is sent again with its key, whose record answers the
//! second copy with the first one's answer if that committed: applied once either way.
//! Under an HA manager (`failover.ha_monitor`) it waits up to `failover.hold_ms`, the
//! time a promotion takes, even when `write_wait_ms` is 0; a write without a key is
//! never sent again once sent (it may have committed: 503).
//!
//! A request is sent again only to a server that has just said it takes writes (out
//! of recovery, its transactions not read-only): the question is a read, safe to lose,
//! while a write without a key sent to a server that is being stopped (an old primary
//! drained for a switchover, which its HA manager then stops) could die after being
//! sent and could then never be re-sent.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use futures_util::future::join_all;

use super::Cluster;
use crate::error::retry::{policy, Cause, Retry, Work};
use crate::error::ClusterError;
use crate::routing::ShardId;
use crate::spans;
use crate::wire::upkeep;

/// How often a waiting request is tried again on the server the map still names.
pub const RETRY_EVERY: Duration = Duration::from_millis(100);

/// How often the wait looks at the map for another primary.
const LOOK_EVERY: Duration = Duration::from_millis(20);

/// What kind of request waits: the keyed-write hold under an HA manager is a single
/// write's or delete's (its client waits for one answer); a bulk write's groups and a
/// transaction wait only `write_wait_ms` or a handover, then answer what they could do
/// (a bulk write's partial answer says exactly what was written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    Single,
    /// A single write under the gateway's own key (`failover.key_every_write`): with
    /// nothing sent it waits as a write without a key does (`write_wait_ms`, or a
    /// handover: its client asked for no hold); once lost after it was sent, as a
    /// keyed one ([`Hold::Single`]): its fate is the gateway's to settle.
    SingleOwnKey,
    Batch,
}

impl Hold {
    /// The hold after a failure; `after_send` when the work was lost after it was sent.
    fn after(self, after_send: bool) -> Hold {
        match (self, after_send) {
            (Hold::SingleOwnKey, true) => Hold::Single,
            (hold, _) => hold,
        }
    }
}

/// What a waiting request does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try it now, on the server the map names.
    Try,
    /// Look again after this long.
    Wait(Duration),
    /// The bound has passed: answer the last failure.
    GiveUp,
}

/// The wait's next step (pure): `waited` since the first failure, `since_try` since the
/// last attempt, `moved` when the map names another primary than the one last tried.
pub fn next(waited: Duration, since_try: Duration, moved: bool, bound: Duration) -> Next {
    if waited >= bound {
        return Next::GiveUp;
    }
    if moved || since_try >= RETRY_EVERY {
        return Next::Try;
    }
    Next::Wait(LOOK_EVERY.min(RETRY_EVERY - since_try).min(bound - waited))
}

impl Cluster {
    /// The shard and server of `error` when the retry policy has `work` wait for a
    /// primary after it, and the bound is not zero (the configured wait, or the
    /// shard's handover, which a read-only answer opens).
    pub(super) fn waits_for_a_primary(
        &self,
        error: &ClusterError,
        work: Work,
        hold: Hold,
    ) -> Option<(ShardId, String)> {
        let (shard, server, cause) = error.primary_lost().or_else(|| {
            let (shard, server) = error.primary_lost_after_send()?;
            Some((shard, server, Cause::LostAfterSend))
        })?;
        if policy(cause, work) != Retry::UntilAPrimaryTakes {
            return None;
        }
        let hold = hold.after(cause == Cause::LostAfterSend);
        let now = Instant::now();
        if cause == Cause::ReadOnly {
            self.handovers.read_only_seen(shard, now);
        }
        let waits = !self.wait_bound(shard, now, work, hold).is_zero();
        waits.then(|| (shard, server.to_owned()))
    }

    /// How long `work` for `shard` that began to wait at `started` may wait in all:
    /// `failover.write_wait_ms`; while the shard's handover is open, up to
    /// `failover.hold_ms`; a single keyed write under an HA manager
    /// (`failover.ha_monitor`), whose promotion may be under way unseen, `hold_ms` too.
    /// The longest of these.
    fn wait_bound(&self, shard: ShardId, started: Instant, work: Work, hold: Hold) -> Duration {
        let failover = &self.settings.failover;
        let mut wait = failover.write_wait();
        let keyed = work == (Work::Write { keyed: true }) && hold == Hold::Single;
        if keyed && failover.ha_monitor.is_some() {
            wait = wait.max(failover.hold());
        }
        match self.handovers.open_until(shard, Instant::now()) {
            Some(end) => wait.max(end.saturating_duration_since(started).min(failover.hold())),
            None => wait,
        }
    }

    /// The server the map names as `shard`'s primary now, and its term.
    fn primary_now(&self, shard: ShardId) -> Option<(String, u64)> {
        let addr = self.shards.get(shard).map(|s| s.primary.addr.clone())?;
        Some((addr, self.map.term(shard.index())))
    }

    /// Whether the server the map names as `shard`'s primary says it takes writes now.
    async fn takes_writes(&self, shard: ShardId) -> bool {
        let Some(s) = self.shards.get(shard) else {
            return false;
        };
        let asked = s
            .primary
            .probe(async |conn| upkeep::takes_writes(conn).await)
            .await;
        matches!(asked, Ok(true))
    }

    /// `attempt` again after `error`, as the module doc says, until it succeeds, fails
    /// otherwise, or the bound passes.
    pub(super) async fn until_a_primary_takes<T>(
        &self,
        mut error: ClusterError,
        work: Work,
        hold: Hold,
        attempt: impl AsyncFn() -> Result<T, ClusterError>,
    ) -> Result<T, ClusterError> {
        let Some((shard, mut tried)) = self.waits_for_a_primary(&error, work, hold) else {
            return Err(error);
        };
        let mut hold = hold.after(error.primary_lost_after_send().is_some());
        let mut tried_term = self.map.term(shard.index());
        let started = Instant::now();
        let bound = self.wait_bound(shard, started, work, hold);
        spans::waiting_for_primary(shard, bound.as_millis() as u64, &error);
        let Some(held) = self.handovers.hold() else {
            return Err(error);
        };
        // The hold's own span, from its first failure to its end (not entered: the
        // attempts meanwhile stay the request's).
        let span = spans::hold(shard, bound.as_millis() as u64);
        let held = |released: bool| {
            span.record("shardgate.released", released);
            held.end(released);
        };
        let mut last_try = started;
        loop {
            let now = self.primary_now(shard);
            let moved = now
                .as_ref()
                .is_some_and(|(p, term)| *p != tried || *term > tried_term);
            let bound = self.wait_bound(shard, started, work, hold);
            match next(started.elapsed(), last_try.elapsed(), moved, bound) {
                Next::GiveUp => {
                    held(false);
                    return Err(error);
                }
                Next::Wait(d) => tokio::time::sleep(d).await,
                Next::Try => {
                    if moved {
                        tracing::info!(%shard, from = %tried, to = ?now, "retrying on the shard's new primary");
                        spans::retried("the shard's new primary", &error);
                    }
                    if let Some((_, term)) = &now {
                        tried_term = *term;
                    }
                    last_try = Instant::now();
                    if !self.takes_writes(shard).await {
                        continue;
                    }
                    match attempt().await {
                        Err(e) => match self.waits_for_a_primary(&e, work, hold) {
                            Some((s, server)) if s == shard => {
                                tried = server;
                                hold = hold.after(e.primary_lost_after_send().is_some());
                                error = e;
                            }
                            _ => {
                                held(true);
                                return Err(e);
                            }
                        },
                        done => {
                            held(true);
                            return done;
                        }
                    }
                }
            }
        }
    }

    /// Waits (as [`Self::until_a_primary_takes`] does) until one of the shards of
    /// `failed` (each with the server that failed) should be tried again; false once
    /// the wait that began at `started` is past the bound.
    pub(super) async fn next_try(
        &self,
        failed: &HashMap<ShardId, String>,
        work: Work,
        started: Instant,
        mut last_try: Instant,
    ) -> bool {
        let Some(held) = self.handovers.hold() else {
            return false;
        };
        let terms: HashMap<ShardId, u64> = failed
            .keys()
            .map(|s| (*s, self.map.term(s.index())))
            .collect();
        loop {
            let moved = failed.iter().any(|(shard, tried)| {
                self.primary_now(*shard)
                    .is_some_and(|(p, term)| p != *tried || Some(&term) > terms.get(shard))
            });
            let bound = failed
                .keys()
                .map(|s| self.wait_bound(*s, started, work, Hold::Batch))
                .max()
                .unwrap_or_default();
            match next(started.elapsed(), last_try.elapsed(), moved, bound) {
                Next::GiveUp => {
                    held.end(false);
                    return false;
                }
                Next::Wait(d) => tokio::time::sleep(d).await,
                Next::Try => {
                    last_try = Instant::now();
                    let asked = join_all(failed.keys().map(|s| self.takes_writes(*s))).await;
                    if asked.into_iter().any(|takes| takes) {
                        held.end(true);
                        return true;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_under_the_gateways_key_holds_as_a_keyed_one_only_once_sent() {
        assert_eq!(Hold::SingleOwnKey.after(false), Hold::SingleOwnKey);
        assert_eq!(Hold::SingleOwnKey.after(true), Hold::Single);
        assert_eq!(Hold::Single.after(false), Hold::Single);
        assert_eq!(Hold::Batch.after(true), Hold::Batch);
    }

    const BOUND: Duration = Duration::from_secs(10);
    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_same_server_is_tried_again_every_100_ms() {
        assert_eq!(next(ms(0), ms(0), false, BOUND), Next::Wait(ms(20)));
        assert_eq!(next(ms(90), ms(90), false, BOUND), Next::Wait(ms(10)));
        assert_eq!(next(ms(100), ms(100), false, BOUND), Next::Try);
        assert_eq!(next(ms(350), ms(120), false, BOUND), Next::Try);
    }

    #[test]
    fn a_new_primary_in_the_map_is_tried_at_once() {
        assert_eq!(next(ms(5), ms(5), true, BOUND), Next::Try);
    }

    #[test]
    fn nothing_is_tried_past_the_bound() {
        assert_eq!(next(BOUND, ms(100), true, BOUND), Next::GiveUp);
        assert_eq!(next(ms(9_995), ms(50), false, BOUND), Next::Wait(ms(5)));
    }

    #[test]
    fn a_zero_bound_never_waits() {
        assert_eq!(next(ms(0), ms(0), true, Duration::ZERO), Next::GiveUp);
    }
}
