//! Shardgate's request analytics: what the gateway lets an operator see.
//!
//! The gateway calls [`Analytics::record`] once per HTTP request and
//! [`Analytics::record_cache`] per cache interaction; it serves
//! [`Analytics::report`] as `GET /api/analytics/metrics`, [`Analytics::recent_errors`]
//! as `GET /api/analytics/errors`, [`Analytics::slowest`] as `GET
//! /api/analytics/slowest` and [`Analytics::exposition_of_gateway`] as `GET /metrics`.
//! No database or HTTP types appear here.
//!
//! Memory is fixed whatever the traffic: histograms have fixed bounds, windows are
//! rings of time slots, errors a ring buffer, the slowest requests a ring of minutes, and every label set has a cap past which
//! values fold into `"other"`. Recording locks one of several stripes, chosen by
//! thread, so two threads rarely meet; readers merge the stripes.
//!
//! # Layout
//!
//! The recorder and its limits are named at the root; everything else by the folder of
//! its idea, which re-exports the types its readers use:
//!
//! - `recorder`: [`Analytics`], the recorder and the only entry point, above every
//!   folder; [`AnalyticsConfig`] is the limits that bound its memory (`recording`).
//! - [`recording`]: what the gateway reports per request ([`recording::RequestSample`],
//!   [`recording::ErrorClass`], ...) and what the recorder keeps: stripes, time slots,
//!   the timeline's rings, cumulative series, histograms, label caps, recent errors,
//!   replica lag.
//! - [`reports`]: the JSON of `/api/analytics/metrics` ([`reports::MetricsReport`]),
//!   built from merged slots, and the `?window=` a client asks for.
//! - [`load`]: [`load::SlotLoad`], load per slot of the key space over 10 s, 1 min and
//!   10 min, and the hottest keys (Space-Saving).
//! - [`cluster`]: one gateway's [`cluster::Figures`] as the others read them, and the
//!   shapes of the views that merge every gateway's: the metrics' cluster view
//!   ([`cluster::Scope`], [`cluster::Coverage`]) and `/api/shards/load`.
//! - [`exposition`]: the Prometheus exposition, as text 0.0.4 or as OpenMetrics 1.0 with
//!   exemplars: the recorder's own families, and those a gateway passes at scrape time
//!   (slot moves, refused requests, the map, transactions, batches, trace spans).

#![warn(missing_docs)]

pub mod cluster;
pub mod exposition;
pub mod load;
mod recorder;
pub mod recording;
pub mod reports;

pub use recorder::Analytics;
pub use recording::config::{AnalyticsConfig, DEFAULT_MAX_WINDOW, MAX_WINDOW_LIMIT};
