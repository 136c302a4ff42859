//! The Prometheus exposition (`GET /metrics`): the recorder's own cumulative families,
//! and those of what a gateway knows besides, passed at scrape time and kept nowhere
//! here; as Prometheus text 0.0.4, or as OpenMetrics 1.0 with exemplars on the request
//! latency buckets when the scraper asks for it.
//!
//! ## Layout
//! - [`format`]: which of the two texts a scraper's `Accept` header asks for
//!   ([`Format`]).
//! - `encoding`: building a family and its metrics, and encoding families as text 0.0.4.
//! - `openmetrics`: encoding families as OpenMetrics text, with exemplars.
//! - `gateway`: what a gateway passes at scrape time ([`GatewayFigures`]).
//! - `requests`: the recorder's families: requests, errors, rows, cache, replica lag.
//! - `cache_memory`: a gateway's memory tier of the cache ([`MemoryTier`]).
//! - `moves`: slot moves in progress ([`MoveProgress`]).
//! - `changes`: change streams per table, and the change log's retention
//!   ([`ChangeStreams`]).
//! - `limited`: requests refused by API keys' limits ([`LimitedCount`]).
//! - `map`: the map version, live gateways, shard terms and failovers ([`MapGauges`]).
//! - `transactions`: transactions by protocol and outcome, and parts in doubt
//!   ([`TransactionStats`]).
//! - `batches`: requests per batch sent to a server, by kind and server ([`BatchSizes`]).
//! - `process`: the process's own CPU, memory, file descriptors and start time, from
//!   `/proc/self` ([`ProcessStats`]).
//! - [`traces`]: a gateway's trace spans, exported or dropped ([`TraceSpans`]), as text
//!   to follow the rest.

pub(crate) mod batches;
pub(crate) mod cache_memory;
pub(crate) mod changes;
pub(crate) mod encoding;
pub mod format;
pub(crate) mod gateway;
pub(crate) mod held;
pub(crate) mod limited;
pub(crate) mod map;
pub(crate) mod moves;
pub(crate) mod openmetrics;
pub(crate) mod process;
pub(crate) mod requests;
pub mod traces;
pub(crate) mod transactions;

pub use batches::BatchSizes;
pub use cache_memory::MemoryTier;
pub use changes::{ChangeStreams, TableChanges};
pub use format::Format;
pub use gateway::GatewayFigures;
pub use held::HeldRequests;
pub use limited::LimitedCount;
pub use map::{MapGauges, ShardTerm};
pub use moves::MoveProgress;
pub use process::{ProcessStats, Units};
pub use traces::TraceSpans;
pub use transactions::TransactionStats;
