//! Recording: what the gateway tells the recorder on every request, and what the
//! recorder keeps between reports, in memory fixed whatever the traffic.
//!
//! A request becomes a [`RequestSample`]; the recorder ([`crate::Analytics`], at the
//! crate's root) adds it to the stripe its thread locks, and each completed second
//! moves into the timeline's rings, from which a report sums its window. Cumulative
//! series feed the Prometheus exposition.
//!
//! ## Layout
//! - `config`: [`crate::AnalyticsConfig`], the limits that bound memory.
//! - `sample`: what the gateway reports: [`RequestSample`], [`ErrorClass`],
//!   [`ServedBy`], [`CacheEvent`], [`OpKind`].
//! - `stripe`: the per-thread accumulators and how a thread picks one.
//! - `slot`: one time slot of counters and histograms by label.
//! - `timeline`: the rings of slots that windows are summed from.
//! - `series`: cumulative per-label-set series for Prometheus.
//! - `exemplars`: per duration bucket of a series, the trace of its latest sampled
//!   request (OpenMetrics exemplars).
//! - `latency`: HDR histograms for percentiles (and their summary in a report), fixed
//!   buckets for Prometheus.
//! - `labels`: label caps and the lock-free endpoint interner.
//! - `error_log`: the ring of recent [`ErrorEvent`]s.
//! - `slowest`: each recent minute's slowest requests ([`SlowRequest`]).
//! - `replicas`: the latest replica lag gauges ([`ReplicaLag`]).

pub(crate) mod config;
pub(crate) mod error_log;
pub(crate) mod exemplars;
pub(crate) mod labels;
pub(crate) mod latency;
pub(crate) mod replicas;
pub(crate) mod sample;
pub(crate) mod series;
pub(crate) mod slot;
pub(crate) mod slowest;
pub(crate) mod stripe;
pub(crate) mod timeline;

pub use error_log::ErrorEvent;
pub use replicas::{ReplicaLag, ReplicaSummary};
pub use sample::{CacheEvent, ErrorClass, ErrorInfo, OpKind, RequestSample, ServedBy};
pub use slowest::SlowRequest;
