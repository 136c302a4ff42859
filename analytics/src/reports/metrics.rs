//! The JSON shape of `GET /api/analytics/metrics`, with its OpenAPI schema.
//!
//! Plain data: built by [`crate::Analytics::report`], serialized by the gateway.
//! Maps are `BTreeMap`s so the output is stable and diffs between polls read well.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::recording::latency::LatencySummary;
use crate::recording::replicas::{ReplicaLag, ReplicaSummary};

/// Everything an operator's dashboard shows, for one window ending now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricsReport {
    /// When the report was built.
    pub generated_at: DateTime<Utc>,
    /// Seconds since this gateway's recorder started; totals cover this span.
    pub uptime_secs: u64,
    /// The window asked for, in whole seconds (rounded up, at least 1).
    pub window_secs: u64,
    /// Seconds actually covered by `latency`, `errors`, `shards` and `cache`: the
    /// window rounded out to whole time slots (5 s up to a minute, 60 s beyond), and
    /// never more than the uptime. Throughput uses exact 1 s slots instead.
    pub detail_window_secs: u64,
    /// Counts since start.
    pub totals: Totals,
    /// Requests per second over the last completed 1, 10 and 60 seconds and the window.
    pub throughput: Throughput,
    /// Latency percentiles over the detail window.
    pub latency: LatencyReport,
    /// Failed requests over the detail window.
    pub errors: ErrorSummary,
    /// Per-shard traffic over the detail window, keyed by shard id (`"other"` past
    /// the shard cap).
    pub shards: BTreeMap<String, ShardReport>,
    /// Cache effectiveness over the detail window.
    pub cache: CacheCounts,
    /// Latest lag reported for every replica, ordered by shard then server.
    pub replicas: Vec<ReplicaLag>,
    /// Worst lag and health counts across `replicas`.
    pub replica_summary: ReplicaSummary,
}

/// Counters since the recorder started (including the current, unfinished second).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Totals {
    /// Requests recorded.
    pub requests: u64,
    /// Requests that failed, whatever the class.
    pub errors: u64,
    /// Failed requests by class.
    pub errors_by_class: ErrorClassCounts,
    /// Rows inserted, updated or deleted.
    pub rows_written: u64,
    /// Rows returned.
    pub rows_read: u64,
    /// Cache interactions.
    pub cache: CacheCounts,
}

/// Request rates in requests per second. A window longer than the uptime is divided
/// by the uptime instead, so a fresh gateway does not look idle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Throughput {
    /// Over the last completed second.
    pub last_1s: f64,
    /// Over the last 10 completed seconds.
    pub last_10s: f64,
    /// Over the last 60 completed seconds.
    pub last_60s: f64,
    /// Over the last `window_secs` completed seconds.
    pub window: f64,
}

/// Latency over the detail window, overall and broken down by each label on its own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LatencyReport {
    /// Every request.
    pub overall: LatencySummary,
    /// By route pattern.
    pub by_endpoint: BTreeMap<String, LatencySummary>,
    /// By shard id, for requests that reached a shard.
    pub by_shard: BTreeMap<String, LatencySummary>,
    /// By serving role: `primary`, `replica`, `cache`, or `none`.
    pub by_role: BTreeMap<String, LatencySummary>,
    /// By outcome: `success` or an error class.
    pub by_outcome: BTreeMap<String, LatencySummary>,
}

/// Failed requests over the detail window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorSummary {
    /// Failed requests.
    pub count: u64,
    /// Share of requests that failed, 0.0 to 1.0 (the SRE "error rate").
    pub rate: f64,
    /// Failed requests per second.
    pub per_sec: f64,
    /// Failed requests by class.
    pub by_class: ErrorClassCounts,
    /// Failed requests by route pattern (only endpoints with errors).
    pub by_endpoint: BTreeMap<String, u64>,
}

/// One counter per [`crate::recording::ErrorClass`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorClassCounts {
    /// 4xx: the client's fault.
    pub client: u64,
    /// The shard's database was unreachable.
    pub shard_unavailable: u64,
    /// A deadline passed.
    pub timeout: u64,
    /// The gateway's own failures.
    pub internal: u64,
}

impl From<[u64; 4]> for ErrorClassCounts {
    fn from([client, shard_unavailable, timeout, internal]: [u64; 4]) -> Self {
        Self {
            client,
            shard_unavailable,
            timeout,
            internal,
        }
    }
}

/// Traffic that one shard handled over the detail window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ShardReport {
    /// Requests routed to this shard.
    pub requests: u64,
    /// Requests that only read (safe HTTP methods).
    pub reads: u64,
    /// Requests that changed data.
    pub writes: u64,
    /// Requests that failed.
    pub errors: u64,
    /// Rows inserted, updated or deleted.
    pub rows_written: u64,
    /// Rows returned.
    pub rows_read: u64,
    /// Who answered.
    pub by_role: RoleCounts,
}

/// Requests by the copy of the data that answered them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoleCounts {
    /// The primary.
    pub primary: u64,
    /// A replica.
    pub replica: u64,
    /// The cache.
    pub cache: u64,
    /// Nobody: the request failed before a server answered.
    pub none: u64,
}

impl From<[u64; 4]> for RoleCounts {
    fn from([primary, replica, cache, none]: [u64; 4]) -> Self {
        Self {
            primary,
            replica,
            cache,
            none,
        }
    }
}

/// Cache interactions, one counter per [`crate::recording::CacheEvent`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CacheCounts {
    /// Values found in Redis.
    pub hits: u64,
    /// Values fetched from a database after a lookup.
    pub misses: u64,
    /// Requests that skipped the cache.
    pub bypasses: u64,
    /// Cached values removed by writes.
    pub invalidations: u64,
    /// Redis failures.
    pub errors: u64,
    /// `hits / (hits + misses)`, or 0 when there were no lookups.
    pub hit_ratio: f64,
}

impl From<[u64; 5]> for CacheCounts {
    fn from([hits, misses, bypasses, invalidations, errors]: [u64; 5]) -> Self {
        let lookups = hits + misses;
        Self {
            hits,
            misses,
            bypasses,
            invalidations,
            errors,
            hit_ratio: ratio(hits, lookups),
        }
    }
}

/// `part / whole`, or 0 when `whole` is 0.
pub(crate) fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}
