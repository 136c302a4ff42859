//! # control-plane
//!
//! Everything that changes or watches the cluster's shape, beside the requests and
//! never in their path: the versioned shard map in the metadata database, API keys,
//! slots moved online between shards, tables imported from an unsharded database, and
//! the health of every server. It talks to PostgreSQL through one client,
//! tokio-postgres (LISTEN/NOTIFY, COPY, long transactions), and drives the request
//! path crate (`shard-manager`) from above: it hands the gateway new map versions
//! (`shard_manager::live_map::MapState::adopt`), probes its servers, raises its cache
//! epochs. Nothing in `shard-manager` depends on this crate.
//!
//! ## Layout
//! Dependencies point down this list, never up:
//! - [`postgres`]: the one client, tokio-postgres, with TLS as `database.sslmode` asks.
//! - [`migrations`]: the one migration runner, for the shards' and the metadata
//!   database's folders (diesel's layout), both embedded.
//! - [`map`]: the versioned shard map in the metadata database: admin changes in their
//!   safe order, the shards told their slots, gateways' heartbeats, a gateway's follower.
//! - [`keys`]: API keys (scopes, tables, limits) in the metadata database, hashed; a
//!   gateway's live copy and the task that follows changes.
//! - [`id_secret`]: the cluster's secret for record ids derived under an idempotency
//!   key, made once in the metadata database and read by every gateway.
//! - [`jobs`]: long-running, resumable work recorded in the metadata database (moves,
//!   imports, next backups): the row, claiming and resuming after a crash, progress,
//!   abort, the stuck rule, the replay of captured changes.
//! - [`moves`]: slots moved between shards online with their rows (capture, copy,
//!   replay, verify, switch under a fence, clean), resumable after any crash.
//! - [`import`]: a table of an unsharded PostgreSQL database copied in while it takes
//!   writes (capture, paged copy, replay, verify, cut over under a fence).
//! - [`health`]: the background monitor, health probes, per-shard data statistics.
//! - [`failover`]: a shard's promotion (by its HA manager) followed: recorded in the
//!   map with a new term, a split-brain primary fenced; behind a service address, the
//!   primary's identity recorded the first time it is seen (read over the request
//!   path's own wire client, with the statement and judgement the gateway's pools use).
//! - [`txn`]: the coordinator log of transactions on several shards, and the recovery
//!   that resolves prepared parts a dead gateway left.
//! - [`indexes`]: indexes for queries made on every shard's primary online
//!   (`CREATE INDEX CONCURRENTLY`), recorded in the metadata database, each shard's
//!   state read from its catalog, interrupted builds resumed, failed ones cleaned.
//! - [`backup`]: backups of every server with pgBackRest, and cluster restore points
//!   fenced against the coordinator log's decisions.
//!
//! The admin CLI (crate `shard-admin`) sits above this crate; the gateway
//! (`api-router`) uses both this crate and the request path.

pub mod backup;
pub mod failover;
pub mod health;
pub mod id_secret;
pub mod import;
pub mod indexes;
pub mod jobs;
pub mod keys;
pub mod map;
pub mod migrations;
pub mod moves;
pub mod postgres;
pub mod txn;

pub use health::{ClusterHealth, Monitor};
