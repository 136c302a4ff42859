//! The recorder's own families, built from a snapshot of the cumulative counters and
//! histograms at scrape time: requests and their durations, errors, rows, the cache,
//! replica lag and uptime.
//!
//! | family                                      | type      | labels                                   |
//! |---------------------------------------------|-----------|------------------------------------------|
//! | `shardgate_uptime_seconds`                  | gauge     |                                          |
//! | `shardgate_http_requests_total`             | counter   | endpoint, method, shard, role, outcome   |
//! | `shardgate_http_request_duration_seconds`   | histogram | endpoint, method, shard, role, outcome   |
//! | `shardgate_errors_total`                    | counter   | class                                    |
//! | `shardgate_rows_written_total`              | counter   | shard                                    |
//! | `shardgate_rows_read_total`                 | counter   | shard                                    |
//! | `shardgate_cache_events_total`              | counter   | event (hit, miss, bypass, ...)           |
//! | `shardgate_cache_redis_duration_seconds`    | histogram |                                          |
//! | `shardgate_replica_lag_bytes`               | gauge     | shard, server                            |
//! | `shardgate_replica_lag_seconds`             | gauge     | shard, server                            |
//! | `shardgate_replica_healthy`                 | gauge     | shard, server                            |
//!
//! The families a gateway passes at scrape time (slot moves, limits, the map,
//! transactions, batches) are in the other files of [`crate::exposition`].

use std::collections::BTreeMap;

use prometheus::proto::{Bucket, Histogram, Metric, MetricFamily, MetricType};

use crate::exposition::encoding::{counter, family, gauge, labelled};
use crate::exposition::openmetrics::Exemplars;
use crate::recording::labels::{method_name, shard_name, Interner, NONE, OUTCOMES, ROLES};
use crate::recording::latency::Buckets;
use crate::recording::replicas::ReplicaLag;
use crate::recording::sample::{CacheEvent, ErrorClass};
use crate::recording::series::{SeriesKey, SeriesStats};
use crate::recording::slot::Counts;

/// Cumulative data merged from every stripe.
#[derive(Default)]
pub(crate) struct Cumulative {
    pub(crate) series: BTreeMap<SeriesKey, SeriesStats>,
    pub(crate) totals: Counts,
    pub(crate) redis: Buckets,
}

/// What turns label indices back into label values.
pub(crate) struct Names<'a> {
    pub(crate) endpoints: &'a Interner,
    pub(crate) shard_cap: u32,
}

impl Names<'_> {
    fn shard(&self, slot: Option<usize>) -> String {
        slot.map_or_else(|| NONE.to_owned(), |s| shard_name(s, self.shard_cap))
    }
}

/// The request latency histogram: the family OpenMetrics exemplars are given on.
pub(crate) const DURATION_FAMILY: &str = "shardgate_http_request_duration_seconds";

/// The exemplars of [`DURATION_FAMILY`]'s metrics, in the order [`families`] lists them.
pub(crate) fn duration_exemplars(data: &Cumulative) -> Exemplars<'_> {
    Exemplars {
        family: DURATION_FAMILY,
        metrics: data.series.values().map(|s| &s.exemplars).collect(),
    }
}

/// Every metric family with at least one sample.
pub(crate) fn families(
    data: &Cumulative,
    names: &Names<'_>,
    replicas: &[ReplicaLag],
    uptime_secs: f64,
) -> Vec<MetricFamily> {
    let mut requests = Vec::new();
    let mut durations = Vec::new();
    let mut rows: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (key, stats) in &data.series {
        let labels = key.labels();
        let shard = names.shard(labels.shard);
        let pairs = [
            ("endpoint", names.endpoints.name(labels.endpoint)),
            ("method", method_name(labels.method)),
            ("shard", shard.as_str()),
            ("role", ROLES.get(labels.role).copied().unwrap_or(NONE)),
            (
                "outcome",
                OUTCOMES.get(labels.outcome).copied().unwrap_or(NONE),
            ),
        ];
        requests.push(counter(&pairs, stats.duration.count() as f64));
        durations.push(histogram(&pairs, &stats.duration));
        if stats.rows_written + stats.rows_read > 0 {
            let entry = rows.entry(shard).or_default();
            entry.0 += stats.rows_written;
            entry.1 += stats.rows_read;
        }
    }
    let errors = ErrorClass::ALL.iter().map(|class| {
        let count = data.totals.errors_by_class[class.index()];
        counter(&[("class", class.as_str())], count as f64)
    });
    let cache = CacheEvent::ALL.iter().map(|event| {
        let count = data.totals.cache[event.index()];
        counter(&[("event", event.as_str())], count as f64)
    });
    let by_shard = |pick: fn(&(u64, u64)) -> u64| -> Vec<Metric> {
        rows.iter()
            .map(|(shard, counts)| counter(&[("shard", shard)], pick(counts) as f64))
            .collect()
    };
    let replica = |value: fn(&ReplicaLag) -> Option<f64>| -> Vec<Metric> {
        replicas
            .iter()
            .filter_map(|r| {
                let shard = r.shard.to_string();
                let pairs = [("shard", shard.as_str()), ("server", r.server.as_str())];
                value(r).map(|v| gauge(&pairs, v))
            })
            .collect()
    };
    let mut out = vec![
        family(
            "shardgate_uptime_seconds",
            "Seconds since the analytics recorder started.",
            MetricType::GAUGE,
            vec![gauge(&[], uptime_secs)],
        ),
        family(
            "shardgate_http_requests_total",
            "HTTP requests handled by the gateway.",
            MetricType::COUNTER,
            requests,
        ),
        family(
            DURATION_FAMILY,
            "Time from request start to response.",
            MetricType::HISTOGRAM,
            durations,
        ),
        family(
            "shardgate_errors_total",
            "Failed requests by error class.",
            MetricType::COUNTER,
            errors.collect(),
        ),
        family(
            "shardgate_rows_written_total",
            "Rows inserted, updated or deleted, by shard.",
            MetricType::COUNTER,
            by_shard(|counts| counts.0),
        ),
        family(
            "shardgate_rows_read_total",
            "Rows returned to clients, by shard.",
            MetricType::COUNTER,
            by_shard(|counts| counts.1),
        ),
        family(
            "shardgate_cache_events_total",
            "Redis cache interactions by event.",
            MetricType::COUNTER,
            cache.collect(),
        ),
        family(
            "shardgate_cache_redis_duration_seconds",
            "Round-trip time of Redis cache commands.",
            MetricType::HISTOGRAM,
            vec![histogram(&[], &data.redis)],
        ),
        family(
            "shardgate_replica_lag_bytes",
            "WAL bytes a replica is behind its primary.",
            MetricType::GAUGE,
            replica(|r| r.lag_bytes.map(|b| b as f64)),
        ),
        family(
            "shardgate_replica_lag_seconds",
            "Replay delay of a replica.",
            MetricType::GAUGE,
            replica(|r| r.lag_ms.map(|ms| ms as f64 / 1000.0)),
        ),
        family(
            "shardgate_replica_healthy",
            "1 when the replica takes reads, 0 when it is banned.",
            MetricType::GAUGE,
            replica(|r| Some(if r.healthy { 1.0 } else { 0.0 })),
        ),
    ];
    out.retain(|family| !family.get_metric().is_empty());
    out
}

fn histogram(pairs: &[(&str, &str)], buckets: &Buckets) -> Metric {
    let mut histogram = Histogram::default();
    histogram.set_sample_count(buckets.count());
    histogram.set_sample_sum(buckets.sum_secs);
    histogram.set_bucket(
        buckets
            .cumulative()
            .map(|(bound, count)| {
                let mut bucket = Bucket::default();
                bucket.set_upper_bound(bound);
                bucket.set_cumulative_count(count);
                bucket
            })
            .collect(),
    );
    let mut metric = labelled(pairs);
    metric.set_histogram(histogram);
    metric
}
