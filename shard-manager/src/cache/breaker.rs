//! A circuit breaker: after `threshold` consecutive failures, stop calling Redis for
//! `open_for`, then let calls through again (the next failure reopens it).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    open_for: Duration,
    started: Instant,
    failures: AtomicU32,
    /// Milliseconds since `started` until which the breaker is open (0 = closed).
    open_until_ms: AtomicU64,
}

impl Breaker {
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            open_for,
            started: Instant::now(),
            failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// True while calls should not be attempted.
    pub fn is_open(&self) -> bool {
        self.now_ms() < self.open_until_ms.load(Ordering::Relaxed)
    }

    pub fn success(&self) {
        self.failures.store(0, Ordering::Relaxed);
    }

    /// Counts a failure; returns true when this one opened the breaker.
    pub fn failure(&self) -> bool {
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.threshold {
            self.failures.store(0, Ordering::Relaxed);
            let until = self.now_ms() + self.open_for.as_millis() as u64;
            self.open_until_ms.store(until, Ordering::Relaxed);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_closes_after_the_pause() {
        let b = Breaker::new(3, Duration::from_millis(50));
        assert!(!b.failure());
        assert!(!b.failure());
        b.success();
        assert!(!b.failure(), "success resets the count");
        assert!(!b.failure());
        assert!(b.failure());
        assert!(b.is_open());
        std::thread::sleep(Duration::from_millis(60));
        assert!(!b.is_open());
    }
}
