//! Requests a gateway held for a shard whose primary was changing hands (a switchover,
//! a promotion) or was down, instead of refusing them. The gateway counts them
//! (`shard_manager::cluster::handover`) and passes the counts at scrape time.
//!
//! | family                                   | type    | labels  |
//! |------------------------------------------|---------|---------|
//! | `shardgate_handovers_total`              | counter |         |
//! | `shardgate_requests_held_now`            | gauge   |         |
//! | `shardgate_requests_held_total`          | counter | outcome |
//! | `shardgate_requests_held_seconds_total`  | counter |         |
//! | `shardgate_writes_may_have_committed_total` | counter |      |
//!
//! The last counts the writes a lost primary left in doubt and the gateway could not
//! send again (no `Idempotency-Key`): answered `503 may-have-committed` (or a
//! transaction `transaction-in-doubt`), whose client must look before it resends.

use prometheus::proto::{MetricFamily, MetricType};

use crate::exposition::encoding::{counter, family, gauge};

/// What a gateway held, since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HeldRequests {
    /// Handovers seen: a shard's primary answering read-only after it did not.
    pub handovers: u64,
    /// Requests waiting now.
    pub held: u64,
    /// Requests that waited, then went to a primary that took them.
    pub released: u64,
    /// Requests that waited to the bound and were answered 503.
    pub timed_out: u64,
    /// Requests answered at once because the most a gateway holds were waiting.
    pub refused_at_bound: u64,
    /// The time every held request waited, in seconds.
    pub held_secs: f64,
    /// Writes answered without knowing whether they applied.
    pub may_have_committed: u64,
}

/// The families.
pub(crate) fn families(held: &HeldRequests) -> Vec<MetricFamily> {
    let outcomes = [
        ("released", held.released),
        ("timed_out", held.timed_out),
        ("refused_at_bound", held.refused_at_bound),
    ];
    vec![
        family(
            "shardgate_handovers_total",
            "Shards whose primary began to answer read-only (drained for a switchover, demoted, or promoted and not yet writable): each opens a handover, during which their requests wait for the new primary up to failover.hold_ms.",
            MetricType::COUNTER,
            vec![counter(&[], held.handovers as f64)],
        ),
        family(
            "shardgate_requests_held_now",
            "Requests waiting now for a shard's new primary.",
            MetricType::GAUGE,
            vec![gauge(&[], held.held as f64)],
        ),
        family(
            "shardgate_requests_held_total",
            "Requests that waited for a shard's new primary, by outcome: released (went to a primary that took them), timed_out (answered 503 at the bound), refused_at_bound (answered at once: failover.hold_max_requests were waiting).",
            MetricType::COUNTER,
            outcomes
                .iter()
                .map(|(outcome, n)| counter(&[("outcome", outcome)], *n as f64))
                .collect(),
        ),
        family(
            "shardgate_requests_held_seconds_total",
            "The time requests spent waiting for a shard's new primary, summed.",
            MetricType::COUNTER,
            vec![counter(&[], held.held_secs)],
        ),
        family(
            "shardgate_writes_may_have_committed_total",
            "Writes answered without knowing whether they applied: sent, then the primary lost under them, and not sent again because they carried no Idempotency-Key (503 may-have-committed), or transactions in doubt.",
            MetricType::COUNTER,
            vec![counter(&[], held.may_have_committed as f64)],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::encoding::encode;

    #[test]
    fn each_count_is_its_familys_value() {
        let held = HeldRequests {
            handovers: 2,
            held: 3,
            released: 40,
            timed_out: 1,
            refused_at_bound: 5,
            held_secs: 12.5,
            may_have_committed: 7,
        };
        let text = encode(&families(&held));
        for line in [
            "shardgate_handovers_total 2",
            "shardgate_requests_held_now 3",
            "shardgate_requests_held_total{outcome=\"released\"} 40",
            "shardgate_requests_held_total{outcome=\"timed_out\"} 1",
            "shardgate_requests_held_total{outcome=\"refused_at_bound\"} 5",
            "shardgate_requests_held_seconds_total 12.5",
            "shardgate_writes_may_have_committed_total 7",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
