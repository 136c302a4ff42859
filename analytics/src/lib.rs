//! Shardgate's request analytics: what the gateway lets an operator see.
//!
//! The gateway calls [`Analytics::record`] once per HTTP request and
//! [`Analytics::record_cache`] per cache interaction; it serves
//! [`Analytics::report`] as `GET /api/analytics/metrics`, [`Analytics::recent_errors`]
//! as `GET /api/analytics/errors` and [`Analytics::prometheus_text`] as `GET /metrics`.
//! No database or HTTP types appear here.
//!
//! Memory is fixed whatever the traffic: histograms have fixed bounds, windows are
//! rings of time slots, errors a ring buffer, and every label set has a cap past which
//! values fold into `"other"`. Recording locks one of several stripes, chosen by
//! thread, so two threads rarely meet; readers merge the stripes.
//!
//! # Layout
//!
//! - [`recorder`]: the [`Analytics`] recorder, the only entry point.
//! - [`config`]: [`AnalyticsConfig`], the limits that bound memory.
//! - [`sample`]: what the gateway reports: [`RequestSample`], [`ErrorClass`],
//!   [`ServedBy`], [`CacheEvent`], [`OpKind`].
//! - [`window`]: parsing of `?window=` and `?timeRange=` into a bounded duration.
//! - [`report`]: the JSON/OpenAPI shape of the metrics report.
//! - [`error_log`]: the ring of recent [`ErrorEvent`]s.
//! - [`replicas`]: latest replica lag gauges.
//! - [`moves`]: slot moves in progress, as Prometheus gauges.
//! - [`map`]: the map version, live gateways, shard terms and failovers, for Prometheus.
//! - [`limited`]: requests refused by API keys' limits, as Prometheus counters.
//! - [`transactions`]: transactions by protocol and outcome, and parts in doubt.
//! - [`batches`]: requests per batch sent to a server, by kind and server.
//! - [`figures`]: one gateway's [`Figures`] as the others read them for the cluster
//!   view; [`cluster`]: the cluster view's shape ([`Scope`], [`Coverage`]).
//! - [`load`]: [`SlotLoad`], load per slot of the key space over 10 s, 1 min and
//!   10 min; [`heavy_hitters`]: the hottest keys (Space-Saving); [`load_report`]: the
//!   shape of `/api/shards/load`.
//! - `labels`: label caps and the lock-free endpoint interner.
//! - `latency`: HDR histograms for percentiles, fixed buckets for Prometheus.
//! - `slot`: one time slot of counters and histograms by label.
//! - `timeline`: the rings of slots that windows are summed from.
//! - `stripe`: the per-thread accumulators and how a thread picks one.
//! - `series`: cumulative per-label-set series for Prometheus.
//! - `reporting`: building a [`MetricsReport`] from merged slots.
//! - `exposition`: Prometheus text exposition.

#![warn(missing_docs)]

pub mod batches;
pub mod cluster;
pub mod config;
pub mod error_log;
mod exposition;
pub mod figures;
pub mod heavy_hitters;
mod labels;
mod latency;
pub mod limited;
pub mod load;
pub mod load_report;
pub mod map;
pub mod moves;
pub mod recorder;
pub mod replicas;
pub mod report;
mod reporting;
pub mod sample;
mod series;
mod slot;
mod stripe;
mod timeline;
pub mod transactions;
pub mod window;

pub use batches::BatchSizes;
pub use cluster::{ClusterMetricsReport, Coverage, GatewayAnswer, MissingGateway, Scope};
pub use config::{AnalyticsConfig, DEFAULT_MAX_WINDOW, MAX_WINDOW_LIMIT};
pub use error_log::ErrorEvent;
pub use figures::Figures;
pub use heavy_hitters::KeyCount;
pub use limited::LimitedCount;
pub use load::{LoadFigures, SlotHit, SlotLoad};
pub use load_report::{HotKey, HotSlot, LoadFigure, LoadReport, SlotLoadView};
pub use map::{MapGauges, ShardTerm};
pub use moves::MoveProgress;
pub use recorder::Analytics;
pub use replicas::{ReplicaLag, ReplicaSummary};
pub use report::{
    CacheCounts, ErrorClassCounts, ErrorSummary, LatencyReport, LatencySummary, MetricsReport,
    RoleCounts, ShardReport, Throughput, Totals,
};
pub use sample::{CacheEvent, ErrorClass, ErrorInfo, OpKind, RequestSample, ServedBy};
pub use transactions::TransactionStats;
pub use window::{
    parse_time_range_ms, parse_window, parse_window_within, window_from_query, WindowError,
    DEFAULT_WINDOW,
};
