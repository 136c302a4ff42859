//! # shard-manager
//!
//! Everything between an HTTP request and PostgreSQL: where a key lives, which server
//! answers, and the SQL that runs there. It knows nothing of HTTP; the gateway
//! (`api-router`) routes each key once with [`Router::route`], calls [`Cluster`] in
//! domain terms with the [`RoutedKey`], and maps [`ClusterError`] to responses.
//!
//! ## Layout
//! Dependencies point down this list, never up:
//! - [`fault`]: test-only kill points (feature `faults`), nothing in a release build.
//! - [`redact`]: secrets hidden from every text shown to people (errors, logs, audit).
//! - [`routing`]: key → slot → shard, pure: [`ShardKey`], [`RoutedKey`], [`Router`],
//!   the four strategies, the `[routing]` settings.
//! - [`spans`]: the request path's `tracing` spans and events for OpenTelemetry traces
//!   (routing, connection waits, each trip to a server, batches linked with the
//!   requests they carried, two-phase commit), named by OpenTelemetry's semantic
//!   conventions; no OpenTelemetry crate here.
//! - [`wal`]: WAL positions, read-your-writes tokens, [`Consistency`].
//! - [`config`]: the typed, layered configuration and its start-up validation (which
//!   yields the [`Router`]).
//! - [`store`]: every statement's SQL as plain text, with what it binds and returns
//!   ([`store::statements`]); the rows, documents, ids, tables, list cursors; the
//!   migrations every shard must have.
//! - [`error`]: [`ClusterError`], naming shard, role and server (and the SQLSTATE of a
//!   refusal); the one SQLSTATE table and the one retry policy.
//! - [`wire`]: a small PostgreSQL client of our own, the crate's only one: every
//!   request's statements (writes, point reads, lists, the replica wait), health checks
//!   and upkeep; a write is one send and one flush back (tokio-postgres syncs, and so
//!   flushes, after every statement). Its errors keep the server's SQLSTATE.
//! - [`servers`]: one server's pools and bounded operations; the ban/lag rules.
//! - [`cache`]: the optional Redis read-through cache and how it stays fresh; what it
//!   did for a request is told in the `analytics` crate's `CacheEvent`, the one crate of
//!   the workspace this one stands on.
//! - [`live_map`]: the shard map a gateway routes with now, and one version of it
//!   (pure); the control plane's follower hands it new versions.
//! - [`cluster`]: the [`Cluster`] facade: write, read, list, fan-out, delete, bulk.
//! - [`changes`]: each table's change stream: the log every write adds to, read at
//!   cuts across shards, resumable by a cursor any gateway reads.
//! - [`export`]: a whole table from every shard, page by page in keyset order, as
//!   NDJSON or CSV, stopped rather than repeat or skip a record when a slot moves.
//!
//! ## The path of a write
//! `POST /api/write` (and `/api/delete`) comes in as [`Cluster::write`] with its
//! [`RoutedKey`]. One attempt (`cluster::records`) finds the key's shard and encodes the
//! write once ([`wire::upsert`], [`wire::delete`]): its statement's bytes, with or
//! without an idempotency key, together with what reads its answer, a
//! [`wire::EncodedWrite`]. The shard's primary commits it
//! ([`servers::Server::write_in_group`]): at once when nothing is in flight there, a
//! group of one; else with the other single writes that arrived meanwhile, all in one
//! transaction sent as one message ([`wire::commit_group`]: `BEGIN`, each write's
//! statement, `COMMIT`, the WAL position).
//! Each write is answered with its own rows, only after the commit; one that is
//! refused is answered alone and the others are sent again, so it never fails them.
//! Back in the cluster, the answer becomes a read-your-writes token and the cache is
//! told. With `database.batch_writes = false` no write waits for another: each is a
//! group of one. Traced ([`spans`]), the write is an operation span with its routing;
//! a group of one is its trip, under it; a larger group's trip is a span of its own,
//! linked both ways with each write it carried. A conditional write or delete ([`Cluster::write_if`],
//! [`Cluster::delete_if`]: HTTP's `If-Match`) takes the same path with a statement that
//! locks the record, checks its version against the [`Precondition`] and changes it, or
//! answers the version it found ([`wire::replace_if`], [`wire::delete_if`]).
//!
//! The admin CLI (the `shard-admin` binary: migrations, the map, moves, keys, seeding,
//! planning, benchmarks) is the crate `shard-admin`, on top of this one.

pub mod cache;
pub mod changes;
pub mod cluster;
pub mod config;
pub mod error;
pub mod export;
pub mod fault;
pub mod live_map;
pub mod redact;
pub mod routing;
pub mod servers;
pub mod spans;
pub mod store;
pub mod wal;
pub mod wire;

pub use cluster::{BulkFailure, BulkItem, BulkOutcome, Cluster, FanOut, Found, Served, Written};
pub use config::{ClusterSettings, ConfigError};
pub use error::ClusterError;
pub use routing::{
    MapVersion, Placement, Role, RouteError, RoutedKey, Router, ShardId, ShardKey, Slot,
};
pub use store::{
    Conditional, Cursor, Document, ListQuery, Precondition, Record, RecordError, RecordId,
    TableName, UnknownTable,
};
pub use wal::{Consistency, Lsn, WriteToken};
