//! The slowest recent requests, with the trace each was recorded under: per minute, the
//! [`KEEP`] slowest of that minute; a query merges the minutes its window touches and
//! keeps the requests that finished inside it. Memory is fixed ([`MINUTES`] × [`KEEP`]
//! entries), and a request no slower than its minute's fastest kept, once the minute is
//! full, takes no lock: only two atomic loads.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Requests kept per minute.
pub(crate) const KEEP: usize = 20;
/// Minutes kept: an hour and the minute under way.
pub(crate) const MINUTES: usize = 61;

/// One slow request, as `GET /api/analytics/slowest` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SlowRequest {
    /// When the request finished.
    pub at: DateTime<Utc>,
    /// Route pattern (`"other"` past the endpoint cap).
    pub endpoint: String,
    /// HTTP method.
    pub method: String,
    /// Status code sent to the client.
    pub status: u16,
    /// Time from request start to response, in milliseconds.
    pub latency_ms: f64,
    /// Shard the request was routed to, if any.
    pub shard: Option<u32>,
    /// The trace it was recorded under (32 hex digits), when the gateway exports traces
    /// and sampled it: look it up in the trace backend.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub trace_id: Option<String>,
}

/// One request offered to [`Slowest::offer`].
pub(crate) struct Offered<'a> {
    /// The recorder's second it finished in.
    pub second: u64,
    pub micros: u64,
    /// Builds the entry, only for a request that is kept.
    pub entry: &'a dyn Fn() -> SlowRequest,
}

struct Minute {
    minute: u64,
    /// (second, micros, entry), slowest first.
    entries: Vec<(u64, u64, SlowRequest)>,
}

/// The recent minutes' slowest requests.
pub(crate) struct Slowest {
    minutes: Mutex<VecDeque<Minute>>,
    /// The newest minute recorded, and below what (micros) a request of it is not kept.
    newest: AtomicU64,
    floor: AtomicU64,
}

impl Slowest {
    pub(crate) fn new() -> Self {
        Self {
            minutes: Mutex::new(VecDeque::with_capacity(MINUTES)),
            newest: AtomicU64::new(u64::MAX),
            floor: AtomicU64::new(0),
        }
    }

    /// Keeps the request if it is among its minute's [`KEEP`] slowest so far.
    pub(crate) fn offer(&self, request: &Offered<'_>) {
        let minute = request.second / 60;
        if self.newest.load(Ordering::Relaxed) == minute
            && request.micros <= self.floor.load(Ordering::Relaxed)
        {
            return;
        }
        let mut minutes = self.minutes.lock();
        let at = match minutes.iter().position(|m| m.minute == minute) {
            Some(at) => at,
            None => {
                if minutes.back().is_some_and(|m| m.minute > minute) {
                    // A request older than the newest minute that minute no longer kept.
                    return;
                }
                if minutes.len() == MINUTES {
                    minutes.pop_front();
                }
                minutes.push_back(Minute {
                    minute,
                    entries: Vec::with_capacity(KEEP + 1),
                });
                minutes.len() - 1
            }
        };
        let newest = at == minutes.len() - 1;
        let kept = &mut minutes[at].entries;
        if kept.len() == KEEP && kept.last().is_some_and(|(_, m, _)| *m >= request.micros) {
            return;
        }
        let place = kept.partition_point(|(_, m, _)| *m >= request.micros);
        kept.insert(place, (request.second, request.micros, (request.entry)()));
        kept.truncate(KEEP);
        if newest {
            let full = kept.len() == KEEP;
            let fastest = kept.last().map_or(0, |(_, m, _)| *m);
            self.floor
                .store(if full { fastest } else { 0 }, Ordering::Relaxed);
            self.newest.store(minute, Ordering::Relaxed);
        }
    }

    /// Up to `limit` of the slowest requests that finished in seconds `from..`, slowest
    /// first.
    pub(crate) fn since(&self, from: u64, limit: usize) -> Vec<SlowRequest> {
        let minutes = self.minutes.lock();
        let mut found: Vec<&(u64, u64, SlowRequest)> = minutes
            .iter()
            .filter(|m| (m.minute + 1) * 60 > from)
            .flat_map(|m| m.entries.iter())
            .filter(|(second, _, _)| *second >= from)
            .collect();
        found.sort_by_key(|(_, micros, _)| std::cmp::Reverse(*micros));
        found
            .into_iter()
            .take(limit)
            .map(|(_, _, e)| e.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(slowest: &Slowest, second: u64, millis: u64) {
        let entry = || SlowRequest {
            at: DateTime::<Utc>::from_timestamp(second as i64, 0).unwrap(),
            endpoint: "/api/write".into(),
            method: "POST".into(),
            status: 200,
            latency_ms: millis as f64,
            shard: Some(1),
            trace_id: Some(format!("{millis:032x}")),
        };
        slowest.offer(&Offered {
            second,
            micros: millis * 1000,
            entry: &entry,
        });
    }

    fn latencies(found: &[SlowRequest]) -> Vec<u64> {
        found.iter().map(|r| r.latency_ms as u64).collect()
    }

    #[test]
    fn each_minute_keeps_its_slowest_and_a_window_merges_them_slowest_first() {
        let slowest = Slowest::new();
        for ms in 1..=100 {
            offer(&slowest, 10, ms);
        }
        for ms in [500, 3, 7] {
            offer(&slowest, 70, ms);
        }
        let found = slowest.since(0, 5);
        assert_eq!(latencies(&found), [500, 100, 99, 98, 97]);
        assert_eq!(
            found[0].trace_id.as_deref(),
            Some(&*format!("{:032x}", 500))
        );
        // Minute 0 kept its KEEP slowest only.
        let first = slowest.since(0, 1000);
        assert_eq!(first.len(), KEEP + 3);
        assert_eq!(*latencies(&first).iter().min().unwrap(), 3);
        assert!(!latencies(&first).contains(&80));
        // A window from second 60 sees minute 1 alone.
        assert_eq!(latencies(&slowest.since(60, 10)), [500, 7, 3]);
        // Within a minute, by second.
        assert_eq!(latencies(&slowest.since(71, 10)), Vec::<u64>::new());
    }

    #[test]
    fn memory_is_fixed_past_an_hour() {
        let slowest = Slowest::new();
        for minute in 0..(MINUTES as u64 + 10) {
            for ms in 0..(KEEP as u64 + 5) {
                offer(&slowest, minute * 60, ms + 1);
            }
        }
        assert_eq!(slowest.minutes.lock().len(), MINUTES);
        assert_eq!(slowest.since(0, usize::MAX).len(), MINUTES * KEEP);
    }

    #[test]
    fn a_late_request_of_a_forgotten_minute_is_dropped() {
        let slowest = Slowest::new();
        for minute in 0..(MINUTES as u64 + 1) {
            offer(&slowest, minute * 60, 5);
        }
        offer(&slowest, 0, 10_000);
        assert!(!latencies(&slowest.since(0, 1000)).contains(&10_000));
    }
}
