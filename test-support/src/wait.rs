//! Waiting in an async test: blocking work (setup.sh, sync diesel) off the runtime, and
//! polling until a condition holds, with a bound that names what never happened.

use std::future::Future;
use std::time::{Duration, Instant};

/// Runs blocking work (setup.sh, sync diesel) off the async runtime.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// Polls `attempt` every 50 ms until it yields a value; panics naming `what` after
/// `within`. Returns the value and how long it took.
pub async fn until<T, F, Fut>(within: Duration, what: &str, mut attempt: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = attempt().await {
            return (value, start.elapsed());
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
