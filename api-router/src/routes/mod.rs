//! HTTP handlers, one file per endpoint family. Handlers parse, call `shard-manager`
//! through `AppState`, and attach an `Outcome` for analytics; errors are `ApiError`.
//!
//! ## Layout
//! - [`write`](mod@write), [`read`] (point reads, and the entry for lists) and
//!   [`list`] (keyed and fan-out lists), [`bulk`], [`delete`]: the record endpoints;
//!   [`transaction`]: operations on many shards, all or nothing; [`read_many`]: many
//!   point reads in one request; [`snapshot`]: reads across shards at one cut;
//!   [`query`]: filtered, sorted pages of a table across every shard.
//! - [`export`]: a whole table from every shard, streamed as NDJSON or CSV.
//! - [`changes`]: a table's change stream, as pages (long-polled) or Server-Sent Events.
//! - [`health`], [`shards`] (map, placement, data), [`analytics`] (metrics, errors,
//!   Prometheus), [`dashboard`] (the embedded page), [`fallback`] (404/405 problems,
//!   the Swagger UI redirect).
//! - [`load`]: load per slot and shard, hot slots and keys; [`cluster_view`]: the
//!   other gateways' figures that cluster views merge.
//! - [`indexes`]: indexes for queries made on every shard online, their state per
//!   shard, and their drop (admin scope).
//! - [`moves`]: slot moves as `/api/shards`, `/api/health` and `/metrics` show them,
//!   from the move watch's last read.
//! - [`openapi`]: the OpenAPI document of these routes, behind Swagger UI.
//! - [`table`]: every path, its one method and its access check, as mounted.

pub mod analytics;
pub mod bulk;
pub mod changes;
pub mod cluster_view;
pub mod dashboard;
pub mod delete;
pub mod export;
pub mod fallback;
pub mod health;
pub mod indexes;
pub mod list;
pub mod load;
pub mod moves;
pub mod openapi;
pub mod query;
pub mod read;
pub mod read_many;
pub mod shards;
pub mod snapshot;
pub mod table;
pub mod transaction;
pub mod write;
