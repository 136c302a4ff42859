//! Group commit: every single write and delete goes this way. Those to one primary that
//! arrive together commit together, in one transaction on one connection
//! (`wire::commit_group`): one send, one commit, one fsync and one
//! synchronous-replication wait for all of them. A lone write is a group of one.
//!
//! Opportunistic, with no timer, as point reads are (`batch_queue`): a lone write goes at
//! once, on its own request's task; writes that come while anything is in flight leave
//! together with the next group, whichever HTTP worker thread they came from (one queue
//! per server). Groups are driven by a task of their own, so a request whose client
//! went away never leaves a shared transaction half read (a lone write's own exchange
//! is its alone). That task runs on the runtime of a write in the group whose request
//! still waits (`home`: each worker has its own): a worker stopping on SIGTERM waits for
//! its own requests, so it never stops a group that answers another worker's.
//!
//! With `database.batch_writes` off, no write waits for another's group: each is a group
//! of one, sent at once on its own request's task with no bound on its lock waits, on a
//! connection of its own.
//!
//! A group is bounded: at most [`GROUP_BOUND`]'s writes and bytes, the oldest first (a
//! write larger than the bytes goes alone), and later writes that still fit go past one
//! that does not (never past a write to the same record): what is left waits for the
//! next group, and large writes never hold small ones back by more than a group.
//!
//! Each write keeps what it has alone: its own statement (slot check, idempotency
//! lookup and entry), its own rows, its own answer and its own deadline, counted from
//! when it joined the queue. A write is answered only once the commit that holds it has
//! returned.
//! - One write refused (bad data, a moved slot, its key taken meanwhile, a lock it
//!   could not get): the transaction rolled back, so nothing of the group committed.
//!   That write gets its refusal (a key taken, a deadlock or a conflict is tried once
//!   more first: nothing of it committed), and the others are sent again at once, on
//!   the same connection. So one bad write never fails the others, nothing is written
//!   twice, and what a refusal costs its neighbours is bounded by the group's bound.
//! - A write whose own deadline passes before a round that could commit it is answered
//!   as timed out and not committed: nothing of it did.
//! - A refusal that is the server's, not the write's (read-only, down, no schema):
//!   every write of the group gets it, as each would alone.
//! - Writes held up by locks (rows a transaction in doubt holds, a slot under a move's
//!   fence), even a lone one: each is taken out and sent alone in a task of its own,
//!   where it waits as a lone write always did, with every other write of the group to
//!   the same record (they wait on the same lock). A group's lock waits share one
//!   bound, [`GROUP_LOCK_BOUND`], across all its rounds: once it is spent, a round
//!   waits at most a millisecond for any lock. So however many of its writes are held
//!   up, the others wait at most the bound and a round trip for each write taken out,
//!   and commit well within their deadline; nothing queued waits behind them.
//! - The connection lost, or no answer in time, once sent: every write of that round
//!   is answered as a lone write's lost send is (503, may have committed); a retry with
//!   the write's key is exact. A round waits for the latest deadline of its writes, so
//!   no write is answered "may have committed" for another's lack of time.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::Instrument;

use super::batch_queue::{abandon, hand_on, next_bounded, peek, Bound, Queue};
use super::failure::{classify, Failure};
use super::home::Home;
use super::pending::PendingWrite;
use super::server::{InFlight, Server};
use super::write_failure::WriteFailure;
use crate::error::sqlstate::{Decision, LOCK_NOT_AVAILABLE};
use crate::error::ClusterError;
use crate::spans;
use crate::store::CommitPosition;
use crate::wire::{commit_group, EncodedWrite, Framed, GroupEnd, WireError, WireObject};

impl Server {
    /// One single write or delete, encoded by its request with what reads its answer
    /// (`crate::wire::upsert`, `crate::wire::delete`), committed with the other single
    /// writes to this primary that arrive while a group is in flight (see the module
    /// doc). With `database.batch_writes` off, every write is a group of one, sent at
    /// once. As [`Server::run_write`], a failure says whether the write may have
    /// committed.
    pub async fn write_in_group<T>(
        self: &Arc<Self>,
        encoded: EncodedWrite<T>,
    ) -> Result<(T, CommitPosition), WriteFailure> {
        let (framed, read) = encoded.into_parts();
        let (reply, answer) = oneshot::channel();
        let waiting = PendingWrite {
            framed,
            reply,
            tried: false,
            requester: spans::requester(),
            home: Home::here(),
            deadline: tokio::time::Instant::now() + self.op_timeout,
        };
        if !self.group_writes {
            // A group of one, at once, on this task: it waits for no other write's group,
            // and no write waits behind it, so its lock waits are not bounded.
            self.writes.sizes.record(1);
            self.commit_alone(waiting).await;
        } else if let Some((waiting, queue)) = self.writes.lead_or_queue(waiting) {
            // Nothing was in flight: this write goes at once, alone, on this task, as a
            // write did before groups; whatever queues meanwhile (from any worker)
            // leaves with a driver, never on this task, which its client may drop.
            let _lead = Lead {
                server: Arc::clone(self),
                queue,
            };
            for waiting in self.commit(vec![waiting]).await {
                Arc::clone(self).send_alone(waiting);
            }
        }
        let (rows, position) = answer.await.unwrap_or_else(|_| {
            Err(WriteFailure {
                error: self.mark_down("the write's group stopped before it answered".into()),
                maybe_committed: true,
            })
        })?;
        let value = read(rows).map_err(|e| WriteFailure {
            error: self.failure(e),
            maybe_committed: true,
        })?;
        Ok((value, position))
    }

    /// How many writes each group committed on this server carried.
    pub fn write_batch_sizes(&self) -> &super::batch_sizes::BatchSizes {
        self.writes.sizes()
    }
}

/// The write that found its queue idle, sending itself: when it is done (or dropped,
/// its client gone), the writes that queued meanwhile get a driver.
struct Lead {
    server: Arc<Server>,
    queue: Arc<Mutex<Queue<PendingWrite>>>,
}

impl Drop for Lead {
    fn drop(&mut self) {
        if hand_on(&self.queue) {
            start_driver(Arc::clone(&self.server), Arc::clone(&self.queue));
        }
    }
}

/// Where the next group of `queue` is driven: this runtime when one of its writes'
/// requests still waits for the answer here, else the runtime of the first that does
/// elsewhere (any waiting write's, when every client has gone; this one when none waits).
fn driver_home(queue: &Mutex<Queue<PendingWrite>>) -> Home {
    peek(queue, |waiting| {
        let live = || waiting.iter().filter(|w| !w.reply.is_closed());
        live()
            .find(|w| w.home.is_here())
            .or_else(|| live().next())
            .or(waiting.first())
            .map(|w| w.home.clone())
    })
    .unwrap_or_else(Home::here)
}

/// Drives `queue` (see [`drive`]) on the runtime [`driver_home`] gives.
fn start_driver(server: Arc<Server>, queue: Arc<Mutex<Queue<PendingWrite>>>) {
    let home = driver_home(&queue);
    home.spawn(drive(server, Driving { queue, done: false }));
}

/// A queue's driving, owned by its driver's task from before it is spawned: a task
/// that ends other than by emptying or handing on its queue (a panic, or its runtime
/// gone before it ran) frees the queue ([`abandon`]), so no write waits for a driver
/// that will never come.
struct Driving {
    queue: Arc<Mutex<Queue<PendingWrite>>>,
    done: bool,
}

impl Drop for Driving {
    fn drop(&mut self) {
        if !self.done {
            abandon(&self.queue);
        }
    }
}

/// Commits what waits in the queue, in groups, until nothing does; a group whose
/// writes all wait on other runtimes is handed to one of them (see the module doc).
async fn drive(server: Arc<Server>, mut driving: Driving) {
    loop {
        if !driver_home(&driving.queue).is_here() {
            // The queue stays driven: the driver there takes the next group.
            driving.done = true;
            start_driver(server, Arc::clone(&driving.queue));
            return;
        }
        let next = next_bounded(
            &driving.queue,
            &server.writes.sizes,
            GROUP_BOUND,
            |w: &PendingWrite| w.framed.bytes(),
            |a, b| a.framed.order == b.framed.order,
        );
        let Some(mut group) = next else {
            driving.done = true;
            return;
        };
        // The same rows locked in the same order by every group: groups on two
        // connections cannot deadlock each other. (Writes to one record keep their
        // order of arrival.)
        group.sort_by(|a, b| a.framed.order.cmp(&b.framed.order));
        // A write held up by a lock waits in a task of its own, as a lone write would:
        // the next group does not wait behind it.
        for waiting in server.commit(group).await {
            Arc::clone(&server).send_alone(waiting);
        }
    }
}

/// How many writes, and how many bytes of them, one group carries at most: each write
/// the shard refuses costs the others of its group one more round, so a refusal makes
/// the shard run at most this many writes again and the wire carry at most these
/// bytes again, and a write waits for no more than this many others' rows.
const GROUP_BOUND: Bound = Bound {
    requests: 64,
    bytes: 1 << 20,
};

/// A group's bound on lock waits (`lock_timeout`), a group of one included, shared by
/// all its rounds: a write that waits longer is taken out and sent alone, off the queue,
/// so locks held elsewhere (a transaction in doubt, a move's fence) delay the other
/// writes by about this in all, however many writes they hold.
const GROUP_LOCK_BOUND: Duration = Duration::from_millis(100);
/// The lock wait of a round once the group's bound is spent (`lock_timeout`'s least).
const SPENT_LOCK_BOUND: Duration = Duration::from_millis(1);

/// The `lock_timeout` of a group's next round, its bound less what its rounds have
/// taken (at least [`SPENT_LOCK_BOUND`]).
fn lock_bound(spent: Duration) -> String {
    let left = GROUP_LOCK_BOUND.saturating_sub(spent).max(SPENT_LOCK_BOUND);
    format!("{}ms", left.as_millis())
}

impl Server {
    /// Commits `group` on one connection, as [`Server::run_write`] runs any other write:
    /// a permit, a live connection, one deadline; then answers every write of it but
    /// those held up by a lock, which it returns: they go alone
    /// ([`commit_alone`](Self::commit_alone)).
    async fn commit(&self, group: Vec<PendingWrite>) -> Vec<PendingWrite> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _guard = InFlight(&self.in_flight);
        let _permit = match self.permit().await {
            Ok(permit) => permit,
            Err(error) => {
                answer_all(group, error, false);
                return Vec::new();
            }
        };
        // Bounded even alone: the queue behind it waits for nothing longer than the bound.
        self.rounds(&mut None, group, true).await
    }

    /// [`commit_alone`](Self::commit_alone) in a task of its own, on the runtime its
    /// request waits on.
    fn send_alone(self: Arc<Self>, waiting: PendingWrite) {
        let home = waiting.home.clone();
        home.spawn(async move { self.commit_alone(waiting).await });
    }

    /// One write that a group's lock bound refused, committed alone with no bound on
    /// its lock waits, as a lone write always was.
    async fn commit_alone(&self, waiting: PendingWrite) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _guard = InFlight(&self.in_flight);
        match self.permit().await {
            Ok(_permit) => {
                self.rounds(&mut None, vec![waiting], false).await;
            }
            Err(error) => answer_all(vec![waiting], error, false),
        }
    }

    /// Sends `group` on `conn` (a live one is taken when there is none) until every
    /// write of it is answered, within one operation bound; a connection found unusable
    /// is dropped and `conn` left empty. Returns the writes a bounded group refused for
    /// a lock wait: they go alone. Its span is the group's (`crate::spans::batch`).
    async fn rounds(
        &self,
        conn: &mut Option<WireObject>,
        group: Vec<PendingWrite>,
        bounded: bool,
    ) -> Vec<PendingWrite> {
        let span = spans::batch(
            &self.peer,
            "group commit",
            group.iter().map(|w| &w.requester),
        );
        self.rounds_traced(conn, group, bounded, &span)
            .instrument(span.clone())
            .await
    }

    async fn rounds_traced(
        &self,
        conn: &mut Option<WireObject>,
        mut group: Vec<PendingWrite>,
        bounded: bool,
        span: &tracing::Span,
    ) -> Vec<PendingWrite> {
        let mut alone = Vec::new();
        group = self.unexpired(group);
        let Some(deadline) = latest_deadline(&group) else {
            return alone;
        };
        let live = match conn.take() {
            Some(live) => Ok(live),
            None => self.live_connection(deadline).await,
        };
        let mut live = match live {
            Ok(live) => live,
            Err(failure) => {
                spans::failed(span, &failure.error);
                answer_all(group, failure.error, failure.maybe_committed);
                return alone;
            }
        };
        spans::served_by(span, live.backend_pid());
        let began = tokio::time::Instant::now();
        let mut prepared_again = false;
        loop {
            // Every round before this one rolled back: a write out of time now never
            // committed, and says so.
            group = self.unexpired(group);
            let Some(deadline) = latest_deadline(&group) else {
                break;
            };
            let frames: Vec<&Framed> = group.iter().map(|w| &w.framed).collect();
            let bound = bounded.then(|| lock_bound(began.elapsed()));
            let sent = commit_group(&mut live, &frames, bound.as_deref());
            let ended = match tokio::time::timeout_at(deadline, sent).await {
                // Cancelled mid-exchange: the connection is never reused.
                Err(_) => {
                    let timeout = self.timeout();
                    spans::failed(span, &timeout);
                    answer_all(group, timeout, true);
                    return alone;
                }
                Ok(Err(err)) => {
                    let refused = refused_whole(&err);
                    if matches!(classify(&err), Failure::Down(_)) {
                        live.discard();
                    }
                    let error = self.failure(err);
                    spans::failed(span, &error);
                    answer_all(group, error, !refused);
                    return alone;
                }
                Ok(Ok(ended)) => ended,
            };
            match ended {
                GroupEnd::Committed(rows, position) => {
                    #[cfg(feature = "faults")]
                    if self.faults.take_lose_after_commit() {
                        live.discard();
                        let lost =
                            self.mark_down("fault point: connection lost after commit".into());
                        answer_all(group, lost, true);
                        return alone;
                    }
                    if let Some(superseded) = self.superseded(&live) {
                        // Committed where the primary is known to have moved on: not
                        // acknowledged, never sent again.
                        spans::failed(span, &superseded);
                        live.discard();
                        answer_all(group, superseded, true);
                        return alone;
                    }
                    self.served.fetch_add(group.len() as u64, Ordering::Relaxed);
                    self.mark_up();
                    for (waiting, rows) in group.into_iter().zip(rows) {
                        let _ = waiting.reply.send(Ok((rows, position.clone())));
                    }
                    break;
                }
                GroupEnd::Refused { index, error } => {
                    // Stale statements (the table changed) are the connection's, not the
                    // write's: prepared again by the next exchange, once, for all.
                    let stale = error.decision() == Some(Decision::StaleStatements);
                    if stale && !std::mem::replace(&mut prepared_again, true) {
                        continue;
                    }
                    if !own_refusal(&error) {
                        let error = self.failure(error);
                        spans::failed(span, &error);
                        answer_all(group, error, false);
                        break;
                    }
                    let mut refused = group.remove(index);
                    if bounded
                        && matches!(&error, WireError::Server(e) if e.code == LOCK_NOT_AVAILABLE)
                    {
                        // The same record's other writes wait on the same lock: out too.
                        let order = refused.framed.order.clone();
                        alone.push(refused);
                        alone.extend(group.extract_if(.., |w| w.framed.order == order));
                    } else if worth_another_try(&error) && !refused.tried {
                        spans::retried("again in its group", &error);
                        refused.tried = true;
                        group.insert(index, refused);
                    } else {
                        let failure = WriteFailure {
                            error: self.failure(error),
                            maybe_committed: false,
                        };
                        // The trip carried nothing else: it failed with its write.
                        if group.is_empty() {
                            spans::failed(span, &failure.error);
                        }
                        let _ = refused.reply.send(Err(failure));
                    }
                    // The rest, again at once: nothing of them committed.
                }
                GroupEnd::RefusedAll(error) => {
                    // Stale statements are prepared again by the next exchange, once.
                    let stale = error.decision() == Some(Decision::StaleStatements);
                    if stale && !std::mem::replace(&mut prepared_again, true) {
                        continue;
                    }
                    let error = self.failure(error);
                    spans::failed(span, &error);
                    answer_all(group, error, false);
                    break;
                }
                GroupEnd::Uncertain(error) => {
                    let error = self.failure(error);
                    spans::failed(span, &error);
                    answer_all(group, error, true);
                    break;
                }
            }
        }
        *conn = Some(live);
        alone
    }

    /// `group` less the writes whose own deadline has passed, which are answered as
    /// timed out before committing: call it only where nothing of them committed.
    fn unexpired(&self, group: Vec<PendingWrite>) -> Vec<PendingWrite> {
        let now = tokio::time::Instant::now();
        let (live, late): (Vec<_>, Vec<_>) = group.into_iter().partition(|w| w.deadline > now);
        answer_all(late, self.timeout(), false);
        live
    }
}

/// The latest deadline of `group`'s writes: how long a round of them may take (none
/// for an empty group).
fn latest_deadline(group: &[PendingWrite]) -> Option<tokio::time::Instant> {
    group.iter().map(|w| w.deadline).max()
}

/// Every write of `group` answered with `error`.
fn answer_all(group: Vec<PendingWrite>, error: ClusterError, maybe_committed: bool) {
    for waiting in group {
        let failure = WriteFailure {
            error: error.clone(),
            maybe_committed,
        };
        let _ = waiting.reply.send(Err(failure));
    }
}

/// Whether a failure of the exchange is a refusal that committed nothing (as
/// `run_write` judges any other write's).
fn refused_whole(err: &WireError) -> bool {
    matches!(
        classify(err),
        Failure::Refused
            | Failure::DataRefused
            | Failure::Conflict
            | Failure::NotOwner { .. }
            | Failure::ReadOnly
    )
}

/// Whether a refusal of one write is that write's own (its data, its slot, its key, a
/// lock on its row, its statement's time), not the server's: the others then go on.
fn own_refusal(error: &WireError) -> bool {
    matches!(
        classify(error),
        Failure::Refused
            | Failure::DataRefused
            | Failure::Conflict
            | Failure::NotOwner { .. }
            | Failure::TimedOut
            | Failure::Undecodable(_)
    )
}

/// Refusals that say nothing against the write itself: its key taken by a request that
/// committed meanwhile (the next try finds that request's answer), or a concurrent
/// transaction (a deadlock, a serialization failure, a lock not granted).
fn worth_another_try(error: &WireError) -> bool {
    matches!(
        error.decision(),
        Some(Decision::KeyTaken | Decision::Conflict)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_groups_lock_waits_share_one_bound() {
        assert_eq!(lock_bound(Duration::ZERO), "100ms");
        assert_eq!(lock_bound(Duration::from_millis(60)), "40ms");
        // Spent: a round waits the least PostgreSQL allows, never without a bound.
        assert_eq!(lock_bound(Duration::from_millis(100)), "1ms");
        assert_eq!(lock_bound(Duration::from_secs(5)), "1ms");
    }
}
