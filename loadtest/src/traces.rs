//! Trace context for the load, so a run's worst case is one lookup away: every request
//! a scenario sends carries a fresh W3C `traceparent` (a random trace id, its sampled
//! flag set on a `--trace-ratio` share of them), and the run keeps its slowest requests
//! with their trace ids for the summary. A gateway that exports traces continues each
//! one under that id and says so with `traceresponse`; the summary counts those answers,
//! so it can tell "look these ids up in your trace backend" from "the gateway traced
//! none of them".
//!
//! Cheap on the request path: a request slower than the slowest kept is the only one
//! that takes the lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// One request's trace context as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// 32 lowercase hex digits, never all zero.
    pub trace_id: String,
    /// The `traceparent` header's value: `00-<trace id>-<span id>-<flags>`.
    pub traceparent: String,
}

/// One of the slowest requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slow {
    /// Goose's response time (to the first byte), in milliseconds.
    pub millis: u64,
    /// The request's name in goose's metrics.
    pub name: String,
    /// The HTTP status, 0 when no response arrived.
    pub status: u16,
    pub trace_id: String,
    /// Whether the gateway answered `traceresponse` under this trace id, sampled.
    pub traced: bool,
}

/// What the summary reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceTally {
    /// Requests sent with a `traceparent`.
    pub sent: u64,
    /// Of those, answers whose `traceresponse` continued the trace, sampled.
    pub traced: u64,
    /// The slowest requests, slowest first.
    pub slowest: Vec<Slow>,
}

/// The run's trace contexts and its slowest requests, shared by every user.
#[derive(Debug)]
pub struct TraceBook {
    /// The share of requests whose `traceparent` asks for sampling.
    ratio: f64,
    /// How many of the slowest requests are kept.
    keep: usize,
    sent: AtomicU64,
    traced: AtomicU64,
    /// Below this (the fastest kept, once `keep` are kept) a request is not kept.
    floor_ms: AtomicU64,
    slowest: Mutex<Vec<Slow>>,
}

impl TraceBook {
    /// `ratio` from 0 to 1 (clamped); `keep` slowest requests kept.
    pub fn new(ratio: f64, keep: usize) -> Self {
        Self {
            ratio: ratio.clamp(0.0, 1.0),
            keep,
            sent: AtomicU64::new(0),
            traced: AtomicU64::new(0),
            floor_ms: AtomicU64::new(0),
            slowest: Mutex::new(Vec::with_capacity(keep + 1)),
        }
    }

    /// A fresh trace context for one request.
    pub fn start(&self) -> Sent {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let trace = rand::random::<u128>().max(1);
        let span = rand::random::<u64>().max(1);
        let sampled = self.ratio >= 1.0 || rand::random::<f64>() < self.ratio;
        let trace_id = format!("{trace:032x}");
        let traceparent = format!(
            "00-{trace_id}-{span:016x}-{}",
            if sampled { "01" } else { "00" }
        );
        Sent {
            trace_id,
            traceparent,
        }
    }

    /// What came back for a request sent with `sent`: its time, name, status and the
    /// answer's `traceresponse` header, if any.
    pub fn finish(
        &self,
        sent: &Sent,
        millis: u64,
        name: &str,
        status: u16,
        traceresponse: Option<&str>,
    ) {
        let traced = traceresponse.is_some_and(|t| continues(t, &sent.trace_id));
        if traced {
            self.traced.fetch_add(1, Ordering::Relaxed);
        }
        if self.keep == 0 || millis < self.floor_ms.load(Ordering::Relaxed) {
            return;
        }
        let mut slowest = self.slowest.lock().unwrap_or_else(|p| p.into_inner());
        slowest.push(Slow {
            millis,
            name: name.to_owned(),
            status,
            trace_id: sent.trace_id.clone(),
            traced,
        });
        slowest.sort_by_key(|s| std::cmp::Reverse(s.millis));
        slowest.truncate(self.keep);
        if slowest.len() == self.keep {
            let fastest = slowest.last().map_or(0, |s| s.millis);
            self.floor_ms.store(fastest, Ordering::Relaxed);
        }
    }

    pub fn tally(&self) -> TraceTally {
        TraceTally {
            sent: self.sent.load(Ordering::Relaxed),
            traced: self.traced.load(Ordering::Relaxed),
            slowest: self
                .slowest
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

/// Whether a `traceresponse` (`00-<trace id>-<span id>-<flags>`) continues `trace_id`
/// and says it was sampled.
fn continues(traceresponse: &str, trace_id: &str) -> bool {
    let mut parts = traceresponse.trim().split('-');
    let (Some(_version), Some(trace), Some(_span), Some(flags)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let sampled = u8::from_str_radix(flags, 16).is_ok_and(|f| f & 1 == 1);
    trace.eq_ignore_ascii_case(trace_id) && sampled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_is_w3c_shaped_and_sampled_at_ratio_one() {
        let book = TraceBook::new(1.0, 3);
        let sent = book.start();
        let parts: Vec<&str> = sent.traceparent.split('-').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], "00");
        assert_eq!(parts[1], sent.trace_id);
        assert_eq!(parts[1].len(), 32);
        assert_eq!(parts[2].len(), 16);
        assert_eq!(parts[3], "01");
        assert!(parts[1]
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(book.start().trace_id, sent.trace_id);
    }

    #[test]
    fn at_ratio_zero_no_traceparent_asks_for_sampling() {
        let book = TraceBook::new(0.0, 3);
        assert!((0..100).all(|_| book.start().traceparent.ends_with("-00")));
        assert_eq!(book.tally().sent, 100);
    }

    #[test]
    fn the_slowest_are_kept_slowest_first_and_the_traced_counted() {
        let book = TraceBook::new(1.0, 3);
        for millis in [5, 40, 1, 30, 20, 50, 2] {
            let sent = book.start();
            let answer = format!("00-{}-00f067aa0ba902b7-01", sent.trace_id);
            let traced = (millis % 10 == 0).then_some(answer.as_str());
            book.finish(&sent, millis, "write", 200, traced);
        }
        let tally = book.tally();
        assert_eq!(tally.sent, 7);
        assert_eq!(tally.traced, 4);
        let kept: Vec<u64> = tally.slowest.iter().map(|s| s.millis).collect();
        assert_eq!(kept, [50, 40, 30]);
        assert!(tally.slowest.iter().all(|s| s.traced));
    }

    #[test]
    fn a_traceresponse_counts_only_for_its_own_trace_and_when_sampled() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert!(continues(&format!("00-{id}-00f067aa0ba902b7-01"), id));
        assert!(!continues(&format!("00-{id}-00f067aa0ba902b7-00"), id));
        assert!(!continues(
            "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01",
            id
        ));
        assert!(!continues("garbage", id));
    }
}
