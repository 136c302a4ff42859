//! The switchover's waits, each bounded: the drain's (no write in flight on the old
//! primary, then the target at its WAL) and a condition polled until it holds.

use std::time::{Duration, Instant};

use super::error::SwitchoverError;
use super::servers::ServerConn;

/// The drain's wait: no write in flight on the primary, then the target at its WAL.
pub(super) async fn drain_writes(
    primary: &ServerConn,
    target: &ServerConn,
    limit: Duration,
) -> Result<bool, SwitchoverError> {
    let until = Instant::now() + limit;
    // Every session takes the reload before its next statement, once the postmaster
    // has passed the signal on: a short pause, then every transaction begun before now
    // must end (a later one is read-only).
    tokio::time::sleep(Duration::from_millis(50)).await;
    let since = primary.clock().await?;
    if !primary.earlier_transactions_gone(&since, limit).await? {
        return Ok(false);
    }
    let lsn = primary.current_lsn().await?;
    wait_for(until, || async {
        Ok(target.behind(&lsn).await? == Some(0))
    })
    .await
    .map(|()| true)
    .or_else(|e| match e {
        SwitchoverError::TimedOut(_) => Ok(false),
        e => Err(e),
    })
}

/// Polls `check` every 50 ms until it says true (Ok) or `until` passes (TimedOut).
pub(super) async fn wait_for<F, Fut>(until: Instant, check: F) -> Result<(), SwitchoverError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<bool, SwitchoverError>>,
{
    loop {
        match check().await {
            Ok(true) => return Ok(()),
            Ok(false) | Err(SwitchoverError::Server { .. }) => {}
            Err(e) => return Err(e),
        }
        if Instant::now() >= until {
            return Err(SwitchoverError::TimedOut("gave up waiting".into()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
