//! Batching in the Prometheus exposition: how many requests each batch sent to a
//! server carried, by kind (`read`: point reads pipelined in one send; `write`: single
//! writes committed in one transaction) and server. The
//! gateway's servers count them; they are passed at scrape time, nothing is kept here.
//!
//! | family                    | type      | labels              |
//! |---------------------------|-----------|---------------------|
//! | `shardgate_batch_size`    | histogram | kind, shard, server |

use prometheus::proto::{Bucket, Histogram, MetricFamily, MetricType};

use crate::exposition::encoding::{family, labelled};

/// One server's batches of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchSizes {
    /// `read` or `write`.
    pub kind: &'static str,
    /// The server's shard.
    pub shard: u32,
    /// The server's address.
    pub server: String,
    /// (upper bound, batches of at most that many requests), cumulative.
    pub cumulative: Vec<(u64, u64)>,
    /// Batches sent.
    pub batches: u64,
    /// Requests they carried.
    pub requests: u64,
}

pub(crate) fn families(sizes: &[BatchSizes]) -> Vec<MetricFamily> {
    if sizes.is_empty() {
        return Vec::new();
    }
    let metrics = sizes
        .iter()
        .map(|s| {
            let mut histogram = Histogram::default();
            histogram.set_sample_count(s.batches);
            histogram.set_sample_sum(s.requests as f64);
            histogram.set_bucket(
                s.cumulative
                    .iter()
                    .map(|(bound, count)| {
                        let mut bucket = Bucket::default();
                        bucket.set_upper_bound(*bound as f64);
                        bucket.set_cumulative_count(*count);
                        bucket
                    })
                    .collect(),
            );
            let shard = s.shard.to_string();
            let mut metric =
                labelled(&[("kind", s.kind), ("shard", &shard), ("server", &s.server)]);
            metric.set_histogram(histogram);
            metric
        })
        .collect();
    vec![family(
        "shardgate_batch_size",
        "Requests per batch sent to a server (kind read: concurrent point reads pipelined in one send; kind write: concurrent single writes committed in one transaction). Sum over count is the mean batch size; a lone request is a batch of 1.",
        MetricType::HISTOGRAM,
        metrics,
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::encoding::encode;

    #[test]
    fn a_server_s_batches_are_one_histogram_with_its_labels() {
        let text = encode(&families(&[BatchSizes {
            kind: "read",
            shard: 1,
            server: "127.0.0.1:25533".into(),
            cumulative: vec![(1, 3), (2, 5), (4, 6)],
            batches: 6,
            requests: 11,
        }]));
        assert!(
            text.contains("# TYPE shardgate_batch_size histogram"),
            "{text}"
        );
        assert!(
            text.contains(
                "shardgate_batch_size_bucket{kind=\"read\",shard=\"1\",server=\"127.0.0.1:25533\",le=\"2\"} 5"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "shardgate_batch_size_sum{kind=\"read\",shard=\"1\",server=\"127.0.0.1:25533\"} 11"
            ),
            "{text}"
        );
        assert!(text.contains("shardgate_batch_size_count{kind=\"read\",shard=\"1\",server=\"127.0.0.1:25533\"} 6"), "{text}");
        assert!(encode(&families(&[])).is_empty());
    }
}
