//! Reports: the JSON a dashboard reads from `GET /api/analytics/metrics`, built from a
//! window of merged slots, and the window a client asks for.
//!
//! ## Layout
//! - `metrics`: the report's shape with its OpenAPI schema ([`MetricsReport`]); its
//!   latencies are [`LatencySummary`]s, each made by the histogram it summarises
//!   (`recording::latency`).
//! - `reporting`: building a [`MetricsReport`] from merged slots.
//! - `window`: parsing of `?window=` and `?timeRange=` into a bounded duration.

pub(crate) mod metrics;
pub(crate) mod reporting;
pub(crate) mod window;

pub use crate::recording::latency::LatencySummary;
pub use metrics::{
    CacheCounts, ErrorClassCounts, ErrorSummary, LatencyReport, MetricsReport, RoleCounts,
    ShardReport, Throughput, Totals,
};
pub use window::{
    parse_time_range_ms, parse_window, parse_window_within, window_from_query, WindowError,
    DEFAULT_WINDOW,
};
