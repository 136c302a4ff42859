//! One PostgreSQL server: its pool of wire connections, its health as seen from
//! traffic, and the bounds every operation on it runs within.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::SemaphorePermit;
use tracing::Instrument;

use super::banlist::{Condition, ServerStats, Transition, Unqualified};
use super::failure::{classify, Failure};
use super::pools::{Pools, Unpooled};
use crate::config::{DatabaseSettings, ReplicationSettings};
use crate::error::retry::{policy, Cause, Retry, Work};
use crate::error::ClusterError;
use crate::routing::{Role, ShardId};
use crate::spans::{self, Peer};
use crate::wal::Lsn;
use crate::wire::{Behind, Target, WireConn, WireError, WireObject};

/// A server of a shard, with its connection pool.
pub struct Server {
    pub shard: ShardId,
    pub role: Role,
    /// `host:port`, as configured.
    pub addr: String,
    /// The server as its trips' spans name it.
    pub(super) peer: Peer,
    /// Connections across threads, and the bound on concurrent operations.
    pools: Pools,
    /// For a primary behind a service address (`follow = "address"`): the floor its
    /// connections are judged by (`crate::wire::behind`); None otherwise.
    pub behind: Option<Arc<Behind>>,
    /// Outer bound on one operation: statement timeout plus a margin for the network.
    pub(super) op_timeout: Duration,
    ban_for: Duration,
    state: Mutex<Condition>,
    pub(super) in_flight: AtomicU64,
    pub(super) served: AtomicU64,
    /// What the last role check found: [`UNKNOWN`], [`STANDBY`] or [`WRITABLE`].
    role_seen: AtomicU8,
    /// Whether the last check found new transactions read-only by default
    /// (`default_transaction_read_only`): on a primary, no write gets through.
    read_only_by_setting: AtomicBool,
    /// Point reads waiting to leave together (see `batch_queue`, driven by `read_batch`).
    pub(super) reads: super::batch_queue::Batches<super::pending::PendingRead>,
    /// Single writes waiting to commit together (driven by `write_batch`).
    pub(super) writes: super::batch_queue::Batches<super::pending::PendingWrite>,
    /// Whether single writes that arrive together commit together
    /// (`database.batch_writes`); off, each is a group of one.
    pub(super) group_writes: bool,
    /// Test-only fault points.
    #[cfg(feature = "faults")]
    pub faults: super::faults::Faults,
}

/// What a server's last role check found (`Server::seen_writable`).
const UNKNOWN: u8 = 0;
const STANDBY: u8 = 1;
const WRITABLE: u8 = 2;

/// Decrements the in-flight count however the operation ends (including cancellation).
pub(super) struct InFlight<'a>(pub(super) &'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Server {
    /// Creates the server. No connection is opened here, so the gateway starts even
    /// when the server is down, and picks it up when it comes back.
    pub fn new(
        shard: ShardId,
        role: Role,
        addr: &str,
        db: &DatabaseSettings,
        ban_for: Duration,
    ) -> Result<Self, deadpool::managed::BuildError> {
        Self::build(shard, role, addr, db, ban_for, None)
    }

    /// The primary behind a service address `addr` (`follow = "address"`): every
    /// connection is judged as it opens and tagged with its timeline, and none below
    /// the floor carries a write (`crate::wire::behind`).
    pub fn behind_address(
        shard: ShardId,
        addr: &str,
        db: &DatabaseSettings,
        ban_for: Duration,
    ) -> Result<Self, deadpool::managed::BuildError> {
        let behind = Arc::new(Behind::default());
        Self::build(shard, Role::Primary, addr, db, ban_for, Some(behind))
    }

    fn build(
        shard: ShardId,
        role: Role,
        addr: &str,
        db: &DatabaseSettings,
        ban_for: Duration,
        behind: Option<Arc<Behind>>,
    ) -> Result<Self, deadpool::managed::BuildError> {
        Ok(Self {
            shard,
            role,
            addr: addr.to_owned(),
            peer: Peer::new(shard, role, addr, &db.dbname),
            pools: Pools::new(Target::new(db, addr), db, behind.clone())?,
            behind,
            op_timeout: db.statement_timeout() + Duration::from_secs(1),
            ban_for,
            state: Mutex::new(Condition::default()),
            in_flight: AtomicU64::new(0),
            served: AtomicU64::new(0),
            role_seen: AtomicU8::new(UNKNOWN),
            read_only_by_setting: AtomicBool::new(false),
            reads: super::batch_queue::Batches::per_thread(),
            writes: super::batch_queue::Batches::shared(),
            group_writes: db.batch_writes,
            #[cfg(feature = "faults")]
            faults: Default::default(),
        })
    }

    /// Runs work that may safely run twice (a read, a check, raising the cache epoch,
    /// purging expired idempotency entries) on a pooled wire connection, bounded in
    /// time, and turns every failure into a [`ClusterError`] naming this server.
    ///
    /// Pooled connections are not tested before use (a test query would double the
    /// transactions PostgreSQL runs per request); the pool only drops connections whose
    /// socket has closed. So when a reused connection turns out to be dead (the server
    /// restarted since it was opened) the retry policy decides: a read is tried once
    /// more, on another connection. A connection that failed that way never goes back
    /// to the pool. Writes go through [`run_write`](Self::run_write) (single ones through
    /// `write_in_group`), never sent twice. Its span names the trip `query`; see
    /// [`run_as`](Self::run_as).
    pub async fn run<T, F>(&self, op: F) -> Result<T, ClusterError>
    where
        F: AsyncFn(&mut WireConn) -> Result<T, WireError>,
    {
        self.run_as("query", op).await
    }

    /// [`run`](Self::run), the trip named `operation` in its span (`db.operation.name`).
    pub async fn run_as<T, F>(&self, operation: &'static str, op: F) -> Result<T, ClusterError>
    where
        F: AsyncFn(&mut WireConn) -> Result<T, WireError>,
    {
        let trip = spans::trip(&self.peer, operation);
        let result = self.run_traced(&trip, op).instrument(trip.clone()).await;
        if let Err(error) = &result {
            spans::failed(&trip, error);
        }
        result
    }

    async fn run_traced<T, F>(&self, trip: &tracing::Span, op: F) -> Result<T, ClusterError>
    where
        F: AsyncFn(&mut WireConn) -> Result<T, WireError>,
    {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _guard = InFlight(&self.in_flight);
        let _permit = self.permit().await?;
        let deadline = tokio::time::Instant::now() + self.op_timeout;
        let mut attempt = 0u32;
        let result = loop {
            attempt += 1;
            let mut conn = self.check_out().await?;
            spans::served_by(trip, conn.backend_pid());
            let outcome = tokio::time::timeout_at(deadline, op(&mut conn)).await;
            match outcome {
                Ok(Ok(value)) => break Ok(value),
                Err(_) => break Err(self.timeout()),
                Ok(Err(err)) => {
                    if self.lost_once(conn, &err, attempt) {
                        continue;
                    }
                    break Err(self.failure(err));
                }
            }
        };
        if result.is_ok() {
            self.served.fetch_add(1, Ordering::Relaxed);
            self.mark_up();
        }
        result
    }

    /// After a read failed with `err` on `conn` (its `attempt`-th): whether to try once
    /// more on another connection, as the retry policy says of a reused connection
    /// found dead. A dead connection is dropped here, never returned to the pool.
    pub(super) fn lost_once(&self, conn: WireObject, err: &WireError, attempt: u32) -> bool {
        let lost = matches!(classify(err), Failure::Down(_));
        let reused = conn.metrics().recycle_count > 0;
        if lost {
            conn.discard();
        }
        let again = policy(Cause::LostAfterSend, Work::Read) == Retry::OtherConnectionOnce;
        if lost && reused && again && attempt == 1 {
            tracing::debug!(shard = %self.shard, role = %self.role, server = %self.addr, error = %err, "pooled connection was dead; retrying on another");
            spans::retried("another connection", err);
            return true;
        }
        false
    }

    /// A health probe: like [`run`](Self::run) but bounded by twice the connect timeout
    /// and not counted as served traffic. Success does not change the condition; the
    /// caller decides (see [`check_passed`](Self::check_passed)).
    pub async fn probe<T, F>(&self, op: F) -> Result<T, ClusterError>
    where
        F: AsyncFnOnce(&mut WireConn) -> Result<T, WireError>,
    {
        let attempt = async {
            let _permit = self.permit().await?;
            let mut conn = self.check_out().await?;
            match op(&mut conn).await {
                Ok(value) => Ok(value),
                Err(err) => {
                    if matches!(classify(&err), Failure::Down(_)) {
                        conn.discard();
                    }
                    Err(self.failure(err))
                }
            }
        };
        match tokio::time::timeout(self.pools.connect_timeout() * 2, attempt).await {
            Ok(result) => result,
            Err(_) => Err(self.mark_down(format!(
                "no answer within {} ms",
                (self.pools.connect_timeout() * 2).as_millis()
            ))),
        }
    }

    /// Why a commit answered on `conn` is not acknowledged: the connection reached a
    /// primary on a timeline below the floor (see `crate::wire::behind`), so it is
    /// answered as a write that may have committed. None for any server not behind an
    /// address.
    pub(super) fn superseded(&self, conn: &WireConn) -> Option<ClusterError> {
        let behind = self.behind.as_ref()?;
        #[cfg(feature = "faults")]
        if self.faults.take_new_timeline_after_commit() {
            behind.raise_floor(conn.timeline().unwrap_or(0) + 1);
        }
        let floor = behind.superseded(conn.timeline())?;
        let on = conn
            .timeline()
            .map_or_else(|| "no known timeline".into(), |t| format!("timeline {t}"));
        let reason = format!(
            "committed on {on}, but the primary behind the address writes on timeline {floor} now: it may not survive the failover"
        );
        tracing::warn!(shard = %self.shard, server = %self.addr, %reason, "a commit from a superseded primary is not acknowledged");
        Some(ClusterError::Unavailable {
            shard: self.shard,
            role: self.role,
            server: self.addr.clone(),
            reason,
            maybe_committed: true,
        })
    }

    /// Records what a role check found: in recovery (a standby) or not (it takes writes).
    pub fn saw_role(&self, in_recovery: bool) {
        let seen = if in_recovery { STANDBY } else { WRITABLE };
        self.role_seen.store(seen, Ordering::Relaxed);
    }

    /// Whether the last role check that answered found the server taking writes
    /// (`Some(true)`) or a standby (`Some(false)`); `None` before any answered.
    pub fn seen_writable(&self) -> Option<bool> {
        match self.role_seen.load(Ordering::Relaxed) {
            WRITABLE => Some(true),
            STANDBY => Some(false),
            _ => None,
        }
    }

    /// Records what a check found of `default_transaction_read_only`.
    pub fn saw_read_only_setting(&self, on: bool) {
        self.read_only_by_setting.store(on, Ordering::Relaxed);
    }

    /// Whether the last check that answered found new transactions read-only by
    /// default (a switchover's drain, or the HA manager's own while it promotes).
    pub fn read_only_by_setting(&self) -> bool {
        self.read_only_by_setting.load(Ordering::Relaxed)
    }

    /// False while the server is banned for failing.
    pub fn is_eligible(&self) -> bool {
        !self.lock_state().is_banned(Instant::now())
    }

    /// Whether this replica may take eventual reads now (see [`Condition::qualification`]).
    pub fn qualification(&self, limits: &ReplicationSettings) -> Result<(), Unqualified> {
        self.lock_state().qualification(Instant::now(), limits)
    }

    /// Records a passing check: the server is up, any ban is lifted, its WAL position
    /// is known.
    pub fn check_passed(&self, wal: Option<Lsn>) {
        let change = self.lock_state().check_passed(Instant::now(), wal);
        if change == Transition::CameBack {
            tracing::info!(shard = %self.shard, role = %self.role, server = %self.addr, "server back");
        }
    }

    /// Stores the replica's lag as the monitor measured it (None = cannot tell).
    pub fn set_lag(&self, lag: Option<super::Lag>) {
        self.lock_state().lag = lag;
    }

    /// Raises the known WAL position (it only moves forward).
    pub fn saw_wal(&self, wal: Lsn) {
        self.lock_state().saw_wal(Some(wal));
    }

    /// Marks the server down from outside a query (e.g. a failed check).
    pub fn check_failed(&self, reason: String) -> ClusterError {
        self.mark_down(reason)
    }

    /// How many point reads each batch sent to this server carried.
    pub fn read_batch_sizes(&self) -> &super::batch_sizes::BatchSizes {
        self.reads.sizes()
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Lets unit tests of read balancing pretend requests are in flight.
    #[cfg(test)]
    pub(crate) fn set_in_flight(&self, n: u64) {
        self.in_flight.store(n, Ordering::Relaxed);
    }

    /// The WAL position this server is known to have reached (written on a primary,
    /// replayed on a replica), as checks and traffic reported it; 0 when unknown. A
    /// lower bound: the server may be further on.
    pub fn known_wal(&self) -> Lsn {
        self.lock_state().wal.unwrap_or(Lsn(0))
    }

    /// The WAL position a health check found after `since`, if one has passed since.
    pub fn wal_observed_after(&self, since: Instant) -> Option<Lsn> {
        let state = self.lock_state();
        state.checked_at.filter(|t| *t > since).and(state.wal)
    }

    pub fn stats(&self) -> ServerStats {
        ServerStats {
            condition: self.lock_state().clone(),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            served: self.served.load(Ordering::Relaxed),
        }
    }

    /// Closes every thread's pool: idle connections are dropped, new operations fail.
    pub fn close(&self) {
        self.pools.close();
    }

    /// A place among the operations this server runs at once.
    pub(super) async fn permit(&self) -> Result<SemaphorePermit<'_>, ClusterError> {
        self.pools
            .permit()
            .instrument(spans::wait("permit"))
            .await
            .map_err(|e| self.unpooled(e))
    }

    /// A pooled connection of this thread.
    pub(super) async fn check_out(&self) -> Result<WireObject, ClusterError> {
        self.pools
            .checkout()
            .instrument(spans::wait("connection"))
            .await
            .map_err(|e| self.unpooled(e))
    }

    fn unpooled(&self, why: Unpooled) -> ClusterError {
        match why {
            Unpooled::Saturated { waited_ms } => ClusterError::Saturated {
                shard: self.shard,
                role: self.role,
                server: self.addr.clone(),
                waited_ms,
            },
            // The gateway is stopping. Not the server's fault, so not marked down.
            Unpooled::Closed => ClusterError::Unavailable {
                shard: self.shard,
                role: self.role,
                server: self.addr.clone(),
                reason: "the gateway is shutting down".into(),
                maybe_committed: false,
            },
            Unpooled::Down(reason) => self.mark_down(reason),
        }
    }

    /// `err`, as the [`ClusterError`] that names this server; a server found down is
    /// marked so (a replica is banned too).
    pub(crate) fn failure(&self, err: WireError) -> ClusterError {
        match classify(&err) {
            Failure::Down(reason) => self.mark_down(reason),
            Failure::ReadOnly => {
                // Not a primary any more: no write goes to it until a check says so.
                self.mark_down("read-only (SQLSTATE 25006): not a primary".into());
                ClusterError::ReadOnly {
                    shard: self.shard,
                    server: self.addr.clone(),
                }
            }
            Failure::TimedOut => self.timeout(),
            Failure::NoSchema => ClusterError::SchemaMissing {
                shard: self.shard,
                server: self.addr.clone(),
                missing: Vec::new(),
            },
            Failure::NotOwner { slots, told } => ClusterError::NotOwner {
                shard: self.shard,
                server: self.addr.clone(),
                slots,
                told,
            },
            Failure::Undecodable(what) => ClusterError::Undecodable {
                shard: self.shard,
                role: self.role,
                server: self.addr.clone(),
                what,
            },
            Failure::Conflict => {
                let WireError::Server(refusal) = err else {
                    unreachable!("only a server's refusal classifies as a conflict")
                };
                ClusterError::Conflict {
                    shard: self.shard,
                    server: self.addr.clone(),
                    sqlstate: refusal.code,
                }
            }
            Failure::DataRefused => {
                let WireError::Server(refusal) = err else {
                    unreachable!("only a server's refusal classifies as refused")
                };
                ClusterError::DataRefused {
                    shard: self.shard,
                    sqlstate: refusal.code,
                    statement: refusal.statement.unwrap_or("unnamed"),
                    message: refusal.message,
                }
            }
            Failure::Refused => {
                let WireError::Server(refusal) = err else {
                    unreachable!("only a server's refusal classifies as refused")
                };
                ClusterError::Query {
                    shard: self.shard,
                    role: self.role,
                    server: self.addr.clone(),
                    sqlstate: refusal.code,
                    statement: refusal.statement.unwrap_or("unnamed"),
                    message: refusal.message,
                }
            }
        }
    }

    pub(super) fn timeout(&self) -> ClusterError {
        ClusterError::Timeout {
            shard: self.shard,
            role: self.role,
            server: self.addr.clone(),
            after_ms: self.op_timeout.as_millis() as u64 - 1000,
        }
    }

    /// Records the failure; a replica is also banned so reads move elsewhere at once.
    pub(super) fn mark_down(&self, reason: String) -> ClusterError {
        let change = self
            .lock_state()
            .failed(Instant::now(), self.role, self.ban_for, &reason);
        if change == Transition::WentDown {
            tracing::warn!(shard = %self.shard, role = %self.role, server = %self.addr, %reason, "server down");
        }
        spans::marked_down(&self.peer, &reason, self.ban_for.as_millis() as u64);
        ClusterError::Unavailable {
            shard: self.shard,
            role: self.role,
            server: self.addr.clone(),
            reason,
            maybe_committed: false,
        }
    }

    /// A query succeeded: the server answers (a ban stays; see [`Condition::answered`]).
    pub(super) fn mark_up(&self) {
        if self.lock_state().answered() == Transition::CameBack {
            tracing::info!(shard = %self.shard, role = %self.role, server = %self.addr, "server answering again");
        }
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, Condition> {
        // A panic while holding this lock cannot leave the small state inconsistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Server {
    /// Thread-local handles may outlive the server: close the pools they point to.
    fn drop(&mut self) {
        self.close();
    }
}
