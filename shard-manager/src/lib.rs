//! # shard-manager
//!
//! Everything between an HTTP request and PostgreSQL: where a key lives, which server
//! answers, and the SQL that runs there. It knows nothing of HTTP; the gateway
//! (`api-router`) calls [`Cluster`] in domain terms and maps [`ClusterError`] to
//! responses.
//!
//! ## Layout
//! - [`config`]: the typed, layered configuration and its start-up validation.
//! - [`key`]: domain names: [`ShardKey`], [`ShardId`], [`Slot`], [`Role`], [`Consistency`].
//! - [`router`]: placement of a key by the configured strategy, its hash and slot, and
//!   the check that refuses keys the strategy cannot place.
//! - [`strategy`]: the four pure placement functions (`slots`, `modulo`, `hash_ring`,
//!   `range`), their guarantees, and where keys go when a shard is added.
//! - [`table`]: the allowed logical tables.
//! - [`record`]: record ids and JSON documents, validated once.
//! - [`server`]: one server's pools, bans and the mapping of database failures.
//! - [`condition`]: a server's state as traffic and checks found it (down, bans, lag).
//! - [`connect`]: connection URLs (timeouts included) and where connections are opened.
//! - `per_thread`: values kept one per thread (pools and Redis connections driven
//!   where they are used).
//! - [`cluster`]: the [`Cluster`] facade: write, read, list, delete.
//! - [`shard`]: one shard's servers and how reads choose among them (consistency,
//!   balance, lag).
//! - [`monitor`]: background health checks and replica lag.
//! - [`lsn`]: WAL positions and read-your-writes tokens.
//! - [`bulk`]: batched writes grouped by shard.
//! - [`cursor`]: list queries: JSON filter, page size, keyset cursor.
//! - [`cache`]: the optional Redis read-through cache and how it stays fresh.
//! - [`health`]: probes of every server, replica lag.
//! - [`stats`]: rows per table and bytes on disk, per shard.
//! - [`status`]: a server's state as the gateway sees it (bans, lag, traffic).
//! - [`store`]: the SQL (diesel-async), parameterised; `fixed_sql` holds the few SQL
//!   expressions diesel has no word for, written so every statement stays prepared.
//! - [`schema`]: diesel's table definitions.
//! - [`admin`]: migrations and database creation on the sync diesel + r2d2 path.
//! - [`error`]: [`ClusterError`], naming shard, role and server.
//!
//! The binary `shard-manager` (src/bin) is the admin CLI over [`admin`].

pub mod admin;
pub mod bulk;
pub mod cache;
pub mod cluster;
pub mod condition;
pub mod config;
pub mod connect;
pub mod cursor;
pub mod error;
mod fixed_sql;
pub mod health;
pub mod key;
pub mod lsn;
pub mod monitor;
mod per_thread;
pub mod record;
pub mod router;
pub mod schema;
pub mod server;
pub mod shard;
pub mod stats;
pub mod status;
pub mod store;
pub mod strategy;
pub mod table;

pub use bulk::{BulkFailure, BulkItem, BulkOutcome};
pub use cluster::{Cluster, FanOut, Found, Served, Written};
pub use config::{ClusterSettings, ConfigError};
pub use cursor::{Cursor, ListQuery};
pub use error::ClusterError;
pub use health::ClusterHealth;
pub use key::{Consistency, Role, ShardId, ShardKey, Slot};
pub use lsn::{Lsn, WriteToken};
pub use monitor::Monitor;
pub use record::{Document, RecordError, RecordId};
pub use router::{Placement, RouteError, Router};
pub use store::Record;
pub use table::{TableName, UnknownTable};
