//! How a write is sent: never twice. A write re-sent after its connection was lost could
//! commit twice (a version bumped twice, a delete answered 404), so the only retry
//! happens before anything is sent.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tracing::Instrument;

use super::failure::{classify, Failure};
use super::server::{InFlight, Server};
use super::write_failure::WriteFailure;
use crate::error::retry::{policy, Cause, Retry, Work};
use crate::spans;
use crate::wire::{WireConn, WireError, WireObject};

/// A pooled connection unused for this long is checked (an empty query) before a write
/// is sent on it, so a connection that died while idle costs a retry before the write,
/// never a second copy of the write after it (see [`Server::run_write`]). Under load
/// connections are reused within microseconds and never pay the check.
const CHECK_IDLE_AFTER: Duration = Duration::from_millis(100);

impl Server {
    /// Runs a write on a wire connection (`crate::wire`). A write is never sent twice:
    /// one retried after its connection was lost could commit twice (a version bumped
    /// twice, a delete answered 404).
    ///
    /// So the only retry happens before anything is sent: a reused connection idle for
    /// [`CHECK_IDLE_AFTER`] is checked with an empty query first, and if that finds it
    /// dead, another connection is taken. Once the write is sent, any failure is final,
    /// and says whether the write may have committed. Its span names the trip `write`;
    /// see [`run_write_as`](Self::run_write_as).
    pub async fn run_write<T, F>(&self, op: F) -> Result<T, WriteFailure>
    where
        F: AsyncFnOnce(&mut WireConn) -> Result<T, WireError>,
    {
        self.run_write_as("write", op).await
    }

    /// [`run_write`](Self::run_write), the trip named `operation` in its span
    /// (`db.operation.name`).
    pub async fn run_write_as<T, F>(
        &self,
        operation: &'static str,
        op: F,
    ) -> Result<T, WriteFailure>
    where
        F: AsyncFnOnce(&mut WireConn) -> Result<T, WireError>,
    {
        let trip = spans::trip(&self.peer, operation);
        let result = self
            .run_write_traced(&trip, op)
            .instrument(trip.clone())
            .await;
        if let Err(failure) = &result {
            spans::failed(&trip, &failure.error);
        }
        result
    }

    async fn run_write_traced<T, F>(&self, trip: &tracing::Span, op: F) -> Result<T, WriteFailure>
    where
        F: AsyncFnOnce(&mut WireConn) -> Result<T, WireError>,
    {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _guard = InFlight(&self.in_flight);
        let _permit = self.permit().await.map_err(WriteFailure::before_sending)?;
        let deadline = tokio::time::Instant::now() + self.op_timeout;
        let mut conn = self.live_connection(deadline).await?;
        spans::served_by(trip, conn.backend_pid());
        let outcome = tokio::time::timeout_at(deadline, op(&mut conn)).await;
        #[cfg(feature = "faults")]
        let outcome = match outcome {
            Ok(Ok(_)) if self.faults.take_lose_after_commit() => {
                conn.discard();
                return Err(WriteFailure {
                    error: self.mark_down("fault point: connection lost after commit".into()),
                    maybe_committed: true,
                });
            }
            other => other,
        };
        let result = match outcome {
            Ok(Ok(value)) => match self.superseded(&conn) {
                // Committed where the primary is known to have moved on.
                Some(error) => {
                    conn.discard();
                    Err(WriteFailure {
                        error,
                        maybe_committed: true,
                    })
                }
                None => Ok(value),
            },
            Err(_) => Err(WriteFailure {
                error: self.timeout(),
                maybe_committed: true,
            }),
            Ok(Err(err)) => {
                if matches!(classify(&err), Failure::Down(_)) {
                    conn.discard();
                }
                // A statement PostgreSQL refused did not commit; anything else may have.
                let refused = matches!(
                    classify(&err),
                    Failure::Refused
                        | Failure::DataRefused
                        | Failure::Conflict
                        | Failure::NotOwner { .. }
                        | Failure::ReadOnly
                );
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
    pub(super) async fn live_connection(
        &self,
        deadline: tokio::time::Instant,
    ) -> Result<WireObject, WriteFailure> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = self
                .check_out()
                .await
                .map_err(WriteFailure::before_sending)?;
            let metrics = conn.metrics();
            if metrics.recycle_count == 0 || metrics.last_used() < CHECK_IDLE_AFTER {
                return Ok(conn);
            }
            match tokio::time::timeout_at(deadline, conn.simple("")).await {
                Ok(Ok(())) => return Ok(conn),
                Err(_) => return Err(WriteFailure::before_sending(self.timeout())),
                Ok(Err(err)) => {
                    let lost = matches!(classify(&err), Failure::Down(_));
                    if lost {
                        conn.discard();
                    }
                    let again = policy(Cause::LostBeforeSend, Work::Write { keyed: false })
                        == Retry::OtherConnectionOnce;
                    if lost && again && attempt == 1 {
                        tracing::debug!(shard = %self.shard, role = %self.role, server = %self.addr, error = %err, "pooled connection was dead; taking another before the write");
                        spans::retried("another connection", &err);
                        continue;
                    }
                    return Err(WriteFailure::before_sending(self.failure(err)));
                }
            }
        }
    }
}
