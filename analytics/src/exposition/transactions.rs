//! Transactions in the Prometheus exposition: how many ended how, by protocol, and the
//! prepared parts in doubt. The gateway keeps the numbers (its cluster counts them and
//! its recovery sees the parts) and passes them at scrape time; nothing is kept here.
//!
//! | family                                   | type    | labels            |
//! |------------------------------------------|---------|-------------------|
//! | `shardgate_transactions_total`           | counter | protocol, outcome |
//! | `shardgate_transactions_in_doubt`        | gauge   |                   |
//! | `shardgate_transactions_oldest_in_doubt_seconds` | gauge |               |

use prometheus::proto::{MetricFamily, MetricType};

use crate::exposition::encoding::{counter, family, gauge};

/// The transactions as a gateway saw them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransactionStats {
    /// (protocol: `one-shard`/`two-phase`, outcome: `committed`/`aborted`/`unknown`/
    /// `replayed`, count since the gateway started).
    pub ended: Vec<(&'static str, &'static str, u64)>,
    /// Prepared parts not resolved yet, as the last recovery round saw them.
    pub in_doubt: u64,
    /// The oldest of them, in seconds (0 when none).
    pub oldest_in_doubt_secs: f64,
}

/// The families.
pub(crate) fn families(stats: &TransactionStats) -> Vec<MetricFamily> {
    let ended = stats
        .ended
        .iter()
        .map(|(protocol, outcome, n)| {
            counter(&[("protocol", protocol), ("outcome", outcome)], *n as f64)
        })
        .collect();
    vec![
        family(
            "shardgate_transactions_total",
            "Transactions (POST /api/transaction, atomic bulk writes) by protocol (one-shard, two-phase) and outcome (committed, aborted: nothing written, unknown: in doubt or committing, settled by recovery, replayed: answered from an earlier request with the same Idempotency-Key).",
            MetricType::COUNTER,
            ended,
        ),
        family(
            "shardgate_transactions_in_doubt",
            "Prepared parts of transactions on several shards not resolved yet, as this gateway's last recovery round saw them on every primary.",
            MetricType::GAUGE,
            vec![gauge(&[], stats.in_doubt as f64)],
        ),
        family(
            "shardgate_transactions_oldest_in_doubt_seconds",
            "Age of the oldest prepared part in doubt (0 when none); recovery resolves parts older than server.txn_in_doubt_ms.",
            MetricType::GAUGE,
            vec![gauge(&[], stats.oldest_in_doubt_secs)],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::encoding::encode;

    #[test]
    fn counts_by_protocol_and_outcome_and_the_doubt_gauges() {
        let text = encode(&families(&TransactionStats {
            ended: vec![("two-phase", "committed", 7), ("one-shard", "aborted", 2)],
            in_doubt: 3,
            oldest_in_doubt_secs: 1.5,
        }));
        assert!(
            text.contains("# TYPE shardgate_transactions_total counter"),
            "{text}"
        );
        assert!(
            text.contains(
                "shardgate_transactions_total{protocol=\"two-phase\",outcome=\"committed\"} 7"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "shardgate_transactions_total{protocol=\"one-shard\",outcome=\"aborted\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("shardgate_transactions_in_doubt 3"), "{text}");
        assert!(
            text.contains("shardgate_transactions_oldest_in_doubt_seconds 1.5"),
            "{text}"
        );
    }
}
