//! A small PostgreSQL client of our own, for every request's statements: writes (one
//! record, a bulk write's group, a delete, each with or without an idempotency key),
//! point reads, lists and each shard's part of a fan-out.
//!
//! tokio-postgres ends every statement with a Sync, and PostgreSQL flushes its answer
//! at each Sync, so a write (the upsert, then the statement that reads the WAL position
//! after its commit) woke the gateway twice; and its answers travel through a driver
//! task and a channel before the request sees them. Here one task writes `BEGIN`, the
//! upsert, `COMMIT` and the position statement in one send behind one Sync, and reads
//! the single flush that answers them (see `commit`; single writes and deletes that
//! arrive together share that frame, `group`; a bulk write's group runs in it too). A point read ([`find`]) or a list
//! ([`list`]) is one statement either way; here it skips the driver task and the
//! channel, and decodes its columns straight into the store's rows.
//!
//! Health checks, table counts and the upkeep run on the same connections ([`upkeep`]):
//! a server has one pool. Every statement's text, with what it binds and returns, is
//! in `crate::store::statements`. A failure keeps what the server said, its SQLSTATE
//! first, and names the statement it refused; what it means is decided by SQLSTATE
//! alone (`crate::error::sqlstate`).
//!
//! ## Layout
//! - [`connect`]: opening a connection: [`Target`], TLS, startup, signing in.
//! - [`conn`]: [`WireConn`], its buffers and message loop, the simple protocol.
//! - `codec`: binary parameters and columns; the rule that shrinks buffers back.
//! - `statements`: the prepared statements' names and parameter types, prepared with a
//!   connection's first exchange, and again (once, as the retry policy says) when
//!   PostgreSQL says they are stale after a schema change (SQLSTATE 0A000, 26000).
//! - [`write`]: every write in its frame: one record or a bulk group, a delete, each
//!   with or without an idempotency key; a record replaced or deleted only at the
//!   versions a condition names; a single write encoded with what reads its
//!   answer ([`EncodedWrite`]), and the group commit it joins ([`commit_group`]).
//! - [`read`]: the point read and a replica's replay position.
//! - [`list`]: a page of a list or of one shard's part of a fan-out.
//! - [`query`]: a query's page, count or estimate on one server, sent unnamed (its
//!   statement is built per request).
//! - [`export`]: a page of an export: a table in keyset order, with what the server
//!   owns.
//! - [`upkeep`]: health checks and upkeep, simple queries read as text.
//! - [`pool`]: a deadpool manager for wire connections; behind a service address, it
//!   judges each new connection and keeps the floor ([`behind`]).
//! - [`behind`]: [`Behind`], the floor of a primary behind a service address: which
//!   connections may carry a write.
//! - [`error`]: [`WireError`], a server's refusal with its SQLSTATE and statement.

pub mod behind;
mod codec;
pub mod conn;
pub mod connect;
pub mod error;
pub mod export;
pub mod list;
pub mod pool;
pub mod query;
pub mod read;
mod statements;
pub mod upkeep;
pub mod write;

pub use behind::Behind;
pub use conn::{Reported, WireConn};
pub use connect::{connect, tls_config, Target};
pub use error::{ServerError, WireError};
pub use export::{export_page, ExportPage, Owned, PageAsk};
pub use list::list;
pub use pool::{WireManager, WireObject};
pub use read::{find, replay_wal};
pub use write::conditional::{delete_if, replace_if};
pub use write::encoded::{EncodedWrite, Framed, ReadRows, Rows};
pub use write::group::{commit_group, GroupEnd};
pub use write::idempotent::{claim, upsert_many_idempotent, DeleteAnswer, UpsertAnswer};
pub use write::single::{delete, upsert};
pub use write::upsert::upsert_many;
