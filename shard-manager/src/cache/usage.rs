//! What the cache did for one request: events and time in Redis, for the `x-cache`
//! header and the analytics.

use std::time::Duration;

/// What the cache did on one interaction: the analytics' own type, so the tally the
/// gateway hands to analytics needs no translation.
pub use analytics::recording::CacheEvent;

/// What the cache did for one operation: its events and the time spent in Redis (a
/// tally for the `x-cache` header and the analytics, not a tracing span).
#[derive(Debug, Clone, Default)]
pub struct CacheUsage {
    pub events: Vec<CacheEvent>,
    pub redis_time: Option<Duration>,
}

impl CacheUsage {
    pub(super) fn push(&mut self, event: CacheEvent, took: Duration) {
        self.events.push(event);
        self.redis_time = Some(self.redis_time.unwrap_or_default() + took);
    }

    /// The read-side status for the `x-cache` header: hit, miss or bypass.
    pub fn status(&self) -> Option<CacheEvent> {
        self.events
            .iter()
            .copied()
            .find(|e| matches!(e, CacheEvent::Hit | CacheEvent::Miss | CacheEvent::Bypass))
    }
}
