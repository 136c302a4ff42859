//! A small PostgreSQL client of our own, for every request's statements: writes (one
//! record, a bulk write's group, a delete, each with or without an idempotency key),
//! point reads, lists and each shard's part of a fan-out.
//!
//! tokio-postgres ends every statement with a Sync, and PostgreSQL flushes its answer
//! at each Sync, so a write (the upsert, then the statement that reads the WAL position
//! after its commit) woke the gateway twice; and its answers travel through a driver
//! task and a channel before the request sees them. Here the request's own task writes
//! `BEGIN`, the upsert, `COMMIT` and the position statement in one send behind one
//! Sync, and reads the single flush that answers them (see `commit`; a bulk write's
//! group and a delete run in the same frame). A point read ([`find`]) or a list
//! ([`list`]) is one statement either way; here it skips the driver task, the channel
//! and diesel's generic row decoding.
//!
//! Health checks, table counts and the upkeep run on the same connections ([`upkeep`]):
//! a server has one pool. The statements' text comes from the store. A failure keeps
//! what the server said, its SQLSTATE first, and names the statement it refused; what
//! it means is decided by SQLSTATE alone (`crate::error::sqlstate`).
//!
//! ## Layout
//! - `target`: [`Target`], where and as whom a connection signs in.
//! - [`startup`]: [`connect`]: TCP, TLS, startup, signing in.
//! - `auth`: signing in: SCRAM-SHA-256 with the server's proof checked; a cleartext
//!   password or MD5 only when `database.allow_insecure_auth` allows them.
//! - `tls`: TLS to PostgreSQL (`database.sslmode`: disable, require, verify-full);
//!   `stream`: the socket, plain or TLS.
//! - [`conn`]: [`WireConn`], its buffers and message loop, the simple protocol.
//! - `buffers`: the rule that shrinks a buffer back after a large message.
//! - `statements`: the prepared statements' names, prepared with a connection's first
//!   exchange, and again (once, then the request is retried) when PostgreSQL says
//!   they are stale after a schema change (SQLSTATE 0A000, 26000).
//! - `commit`: the frame a write runs in (its transaction, then the position read).
//! - [`upsert`]: one record, or many ([`upsert_many`]).
//! - [`delete`]: one record's delete.
//! - [`remembered`]: the same three writes sent with an idempotency key.
//! - [`read`]: the point read and a replica's replay position.
//! - [`list`]: a page of a list or of one shard's part of a fan-out.
//! - `values`: binary parameters; `columns`: binary columns.
//! - [`pool`]: a deadpool manager for wire connections.
//! - [`upkeep`]: health checks and upkeep, simple queries read as text.
//! - [`error`]: [`WireError`], a server's refusal with its SQLSTATE and statement.

mod auth;
mod buffers;
mod columns;
mod commit;
pub mod conn;
pub mod delete;
pub mod error;
pub mod list;
pub mod pool;
pub mod read;
pub mod remembered;
pub mod startup;
mod statements;
mod stream;
mod target;
mod tls;
pub mod upkeep;
pub mod upsert;
mod values;

pub use conn::WireConn;
pub use delete::delete;
pub use error::{ServerError, WireError};
pub use list::list;
pub use pool::{WireManager, WireObject};
pub use read::{find, replay_wal};
pub use remembered::{claim, delete_remembered, upsert_many_remembered, upsert_remembered};
pub use startup::connect;
pub use target::Target;
pub use tls::tls_config;
pub use upsert::{upsert, upsert_many};
