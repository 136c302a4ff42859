//! One PostgreSQL server: its pool, its health as seen from traffic, and the one
//! place where database failures become [`ClusterError`]s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use deadpool::managed::{PoolError, TimeoutType};
use diesel::QueryResult;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::AsyncPgConnection;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::banlist::{Condition, ServerStats, Transition, Unqualified};
use super::connect::{build_pool, connection_url};
use super::per_thread::PerThread;
use crate::config::{DatabaseSettings, ReplicationSettings};
use crate::error::{classify, ClusterError, Failure};
use crate::routing::{Role, ShardId};
use crate::wal::Lsn;

type PgPool = Pool<AsyncPgConnection>;

/// A pooled connection unused for this long is checked (an empty query) before a write
/// is sent on it, so a connection that died while idle costs a retry before the write,
/// never a second copy of the write after it (see [`Server::run_write`]). Under load
/// connections are reused within microseconds and never pay the check.
const CHECK_IDLE_AFTER: Duration = Duration::from_millis(100);

/// A write that failed, and whether it may have committed anyway.
#[derive(Debug)]
pub struct WriteFailure {
    pub error: ClusterError,
    /// The write reached the server and its outcome is unknown (the connection was lost
    /// or the answer timed out after sending): it may have committed.
    pub maybe_committed: bool,
}

impl WriteFailure {
    fn before_sending(error: ClusterError) -> Self {
        Self {
            error,
            maybe_committed: false,
        }
    }
}

/// A server of a shard, with its connection pool.
pub struct Server {
    pub shard: ShardId,
    pub role: Role,
    /// `host:port`, as configured.
    pub addr: String,
    /// This thread's pool: connections are opened and driven on the thread that uses
    /// them (see [`crate::per_thread`]).
    pools: PerThread<Result<PgPool, String>>,
    /// Every thread's pool, so that [`close`](Self::close) reaches them all.
    made: Mutex<Vec<PgPool>>,
    url: String,
    pool_size: usize,
    /// At most `pool_max_size` operations on this server at once, whatever thread they
    /// run on: past that a request waits `pool_wait_timeout_ms`, then gets 503.
    permits: Semaphore,
    /// Outer bound on one operation: statement timeout plus a margin for the network.
    op_timeout: Duration,
    wait_timeout: Duration,
    connect_timeout: Duration,
    ban_for: Duration,
    state: Mutex<Condition>,
    in_flight: AtomicU64,
    served: AtomicU64,
    /// Test-only fault points.
    #[cfg(feature = "faults")]
    pub faults: super::faults::Faults,
}

/// Decrements the in-flight count however the operation ends (including cancellation).
struct InFlight<'a>(&'a AtomicU64);

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
        let url = connection_url(db, addr);
        // Fails here, at start-up, if it would ever fail on a request.
        build_pool(
            &url,
            db.pool_max_size,
            db.pool_wait_timeout(),
            db.connect_timeout(),
        )?;
        Ok(Self {
            shard,
            role,
            addr: addr.to_owned(),
            pools: PerThread::new(),
            made: Mutex::new(Vec::new()),
            url,
            pool_size: db.pool_per_thread(),
            permits: Semaphore::new(db.pool_max_size),
            op_timeout: db.statement_timeout() + Duration::from_secs(1),
            wait_timeout: db.pool_wait_timeout(),
            connect_timeout: db.connect_timeout(),
            ban_for,
            state: Mutex::new(Condition::default()),
            in_flight: AtomicU64::new(0),
            served: AtomicU64::new(0),
            #[cfg(feature = "faults")]
            faults: Default::default(),
        })
    }

    /// Runs one operation on a pooled connection, bounded in time, and turns every
    /// failure into a [`ClusterError`] naming this server.
    ///
    /// Pooled connections are not tested before use (a test query would double the
    /// transactions PostgreSQL runs per request); the pool only drops connections whose
    /// socket has closed. So when a reused connection turns out to be dead (the server
    /// restarted since it was opened) the operation is tried once more, on another
    /// connection. A connection that failed that way never goes back to the pool.
    pub async fn run<T, F>(&self, op: F) -> Result<T, ClusterError>
    where
        F: AsyncFn(&mut AsyncPgConnection) -> QueryResult<T>,
    {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _guard = InFlight(&self.in_flight);
        let _permit = self.permit().await?;
        let deadline = tokio::time::Instant::now() + self.op_timeout;
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            let mut conn = self.checkout().await?;
            let outcome = tokio::time::timeout_at(deadline, op(&mut conn)).await;
            match outcome {
                Ok(Ok(value)) => break Ok(value),
                Err(_) => break Err(self.timeout()),
                Ok(Err(err)) => {
                    let lost = matches!(classify(&err), Failure::Down(_));
                    let reused = Object::metrics(&conn).recycle_count > 0;
                    if lost {
                        // Dropped here, not returned: nobody else gets a dead connection.
                        drop(Object::take(conn));
                    }
                    if lost && reused && attempt == 1 {
                        tracing::debug!(shard = %self.shard, role = %self.role, server = %self.addr, error = %err, "pooled connection was dead; retrying on another");
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

    /// Runs a write, which is never sent twice: a write retried after its connection
    /// was lost could commit twice (a version bumped twice, a delete answered 404).
    ///
    /// So the only retry happens before anything is sent: a reused connection idle for
    /// [`CHECK_IDLE_AFTER`] is checked with an empty query first, and if that finds it
    /// dead, another connection is taken. Once the write is sent, any failure is final,
    /// and says whether the write may have committed.
    pub async fn run_write<T, F>(&self, op: F) -> Result<T, WriteFailure>
    where
        F: AsyncFnOnce(&mut AsyncPgConnection) -> QueryResult<T>,
    {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _guard = InFlight(&self.in_flight);
        let _permit = self.permit().await.map_err(WriteFailure::before_sending)?;
        let deadline = tokio::time::Instant::now() + self.op_timeout;
        let mut conn = self.live_connection(deadline).await?;
        let outcome = tokio::time::timeout_at(deadline, op(&mut conn)).await;
        #[cfg(feature = "faults")]
        let outcome = match outcome {
            Ok(Ok(_)) if self.faults.take_lose_after_commit() => {
                drop(Object::take(conn));
                return Err(WriteFailure {
                    error: self.mark_down("fault point: connection lost after commit".into()),
                    maybe_committed: true,
                });
            }
            other => other,
        };
        let result = match outcome {
            Ok(Ok(value)) => Ok(value),
            Err(_) => Err(WriteFailure {
                error: self.timeout(),
                maybe_committed: true,
            }),
            Ok(Err(err)) => {
                if matches!(classify(&err), Failure::Down(_)) {
                    drop(Object::take(conn));
                }
                // A statement PostgreSQL refused did not commit; anything else may have.
                let refused = matches!(err, diesel::result::Error::DatabaseError(..))
                    && matches!(classify(&err), Failure::Other);
                Err(WriteFailure {
                    error: self.failure(err),
                    maybe_committed: !refused,
                })
            }
        };
        if result.is_ok() {
            self.served.fetch_add(1, Ordering::Relaxed);
            self.mark_up();
        }
        result
    }

    /// A connection a write can be sent on: a reused one idle past [`CHECK_IDLE_AFTER`]
    /// is checked first; one found dead is dropped and another taken (once).
    async fn live_connection(
        &self,
        deadline: tokio::time::Instant,
    ) -> Result<Object<AsyncPgConnection>, WriteFailure> {
        use diesel_async::SimpleAsyncConnection;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = self
                .checkout()
                .await
                .map_err(WriteFailure::before_sending)?;
            let metrics = Object::metrics(&conn);
            if metrics.recycle_count == 0 || metrics.last_used() < CHECK_IDLE_AFTER {
                return Ok(conn);
            }
            match tokio::time::timeout_at(deadline, conn.batch_execute("")).await {
                Ok(Ok(())) => return Ok(conn),
                Err(_) => return Err(WriteFailure::before_sending(self.timeout())),
                Ok(Err(err)) => {
                    let lost = matches!(classify(&err), Failure::Down(_));
                    if lost {
                        drop(Object::take(conn));
                    }
                    if lost && attempt == 1 {
                        tracing::debug!(shard = %self.shard, role = %self.role, server = %self.addr, error = %err, "pooled connection was dead; taking another before the write");
                        continue;
                    }
                    return Err(WriteFailure::before_sending(self.failure(err)));
                }
            }
        }
    }

    /// A health probe: like [`run`](Self::run) but bounded by twice the connect timeout
    /// and not counted as served traffic. Success does not change the condition; the
    /// caller decides (see [`check_passed`](Self::check_passed)).
    pub async fn probe<T, F>(&self, op: F) -> Result<T, ClusterError>
    where
        F: AsyncFnOnce(&mut AsyncPgConnection) -> QueryResult<T>,
    {
        let attempt = async {
            let _permit = self.permit().await?;
            let mut conn = self.checkout().await?;
            op(&mut conn).await.map_err(|e| self.failure(e))
        };
        match tokio::time::timeout(self.connect_timeout * 2, attempt).await {
            Ok(result) => result,
            Err(_) => Err(self.mark_down(format!(
                "no answer within {} ms",
                (self.connect_timeout * 2).as_millis()
            ))),
        }
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
        self.permits.close();
        for pool in self.made.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            pool.close();
        }
    }

    /// A place among the operations this server runs at once; waits up to the pool wait
    /// timeout for one.
    async fn permit(&self) -> Result<SemaphorePermit<'_>, ClusterError> {
        match tokio::time::timeout(self.wait_timeout, self.permits.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            // Closed: the gateway is stopping. Not the server's fault, so not marked down.
            Ok(Err(_)) => Err(ClusterError::Unavailable {
                shard: self.shard,
                role: self.role,
                server: self.addr.clone(),
                reason: "the gateway is shutting down".into(),
            }),
            Err(_) => Err(ClusterError::Saturated {
                shard: self.shard,
                role: self.role,
                server: self.addr.clone(),
                waited_ms: self.wait_timeout.as_millis() as u64,
            }),
        }
    }

    /// This thread's pool, made on its first use here.
    fn pool(&self) -> Result<PgPool, ClusterError> {
        let made = self.pools.get_or(|| {
            let pool = build_pool(
                &self.url,
                self.pool_size,
                self.wait_timeout,
                self.connect_timeout,
            );
            if let Ok(pool) = &pool {
                let mut all = self.made.lock().unwrap_or_else(|p| p.into_inner());
                if self.permits.is_closed() {
                    pool.close();
                }
                all.push(pool.clone());
            }
            pool.map_err(|e| e.to_string())
        });
        made.map_err(|reason| self.mark_down(reason))
    }

    async fn checkout(&self) -> Result<Object<AsyncPgConnection>, ClusterError> {
        match self.pool()?.get().await {
            Ok(conn) => Ok(conn),
            Err(PoolError::Timeout(TimeoutType::Wait)) => Err(ClusterError::Saturated {
                shard: self.shard,
                role: self.role,
                server: self.addr.clone(),
                waited_ms: self.wait_timeout.as_millis() as u64,
            }),
            Err(PoolError::Timeout(_)) => Err(self.mark_down(format!(
                "no connection within {} ms",
                self.connect_timeout.as_millis()
            ))),
            Err(PoolError::Backend(e)) => Err(self.mark_down(e.to_string())),
            Err(e) => Err(self.mark_down(e.to_string())),
        }
    }

    fn failure(&self, err: diesel::result::Error) -> ClusterError {
        match classify(&err) {
            Failure::Down(reason) => self.mark_down(reason),
            Failure::TimedOut => self.timeout(),
            Failure::NoSchema => ClusterError::SchemaMissing {
                shard: self.shard,
                server: self.addr.clone(),
                missing: Vec::new(),
            },
            Failure::Other => ClusterError::Query {
                shard: self.shard,
                role: self.role,
                server: self.addr.clone(),
                source: err,
            },
        }
    }

    fn timeout(&self) -> ClusterError {
        ClusterError::Timeout {
            shard: self.shard,
            role: self.role,
            server: self.addr.clone(),
            after_ms: self.op_timeout.as_millis() as u64 - 1000,
        }
    }

    /// Records the failure; a replica is also banned so reads move elsewhere at once.
    fn mark_down(&self, reason: String) -> ClusterError {
        let change = self
            .lock_state()
            .failed(Instant::now(), self.role, self.ban_for, &reason);
        if change == Transition::WentDown {
            tracing::warn!(shard = %self.shard, role = %self.role, server = %self.addr, %reason, "server down");
        }
        ClusterError::Unavailable {
            shard: self.shard,
            role: self.role,
            server: self.addr.clone(),
            reason,
        }
    }

    /// A query succeeded: the server answers (a ban stays; see [`Condition::answered`]).
    fn mark_up(&self) {
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
