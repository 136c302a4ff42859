//! Requests refused by an API key's limits, in the Prometheus exposition. The gateway
//! keeps the counts and passes them at scrape time; nothing is kept here.
//!
//! | family                               | type    | labels      |
//! |--------------------------------------|---------|-------------|
//! | `shardgate_limited_requests_total`   | counter | key, limit  |

use prometheus::proto::{MetricFamily, MetricType};

use crate::exposition::encoding::{counter, family};

/// How many requests of one key one limit refused (429) since the gateway started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitedCount {
    /// The key's name (never its secret).
    pub key: String,
    /// `rate` or `concurrency`.
    pub limit: &'static str,
    /// Refused requests.
    pub count: u64,
}

/// The family, when there is any key to count for.
pub(crate) fn families(counts: &[LimitedCount]) -> Vec<MetricFamily> {
    if counts.is_empty() {
        return Vec::new();
    }
    let samples = counts
        .iter()
        .map(|c| counter(&[("key", &c.key), ("limit", c.limit)], c.count as f64))
        .collect();
    vec![family(
        "shardgate_limited_requests_total",
        "Requests an API key's limits refused with 429, by key and limit (rate, concurrency).",
        MetricType::COUNTER,
        samples,
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::encoding::encode;

    #[test]
    fn counts_are_one_counter_per_key_and_limit() {
        let text = encode(&families(&[
            LimitedCount {
                key: "billing".into(),
                limit: "rate",
                count: 3,
            },
            LimitedCount {
                key: "billing".into(),
                limit: "concurrency",
                count: 0,
            },
        ]));
        assert!(
            text.contains("# TYPE shardgate_limited_requests_total counter"),
            "{text}"
        );
        assert!(
            text.contains("shardgate_limited_requests_total{key=\"billing\",limit=\"rate\"} 3"),
            "{text}"
        );
        assert!(
            text.contains(
                "shardgate_limited_requests_total{key=\"billing\",limit=\"concurrency\"} 0"
            ),
            "{text}"
        );
        assert!(families(&[]).is_empty());
    }
}
