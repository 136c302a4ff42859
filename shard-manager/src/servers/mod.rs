//! The PostgreSQL servers of every shard: pools, bounded operations, and the ban/lag
//! rules that decide which replica takes reads.
//!
//! ## Layout
//! - [`server`]: [`Server`]: one server's pools (one per worker thread), its permits,
//!   `run`/`probe`, and the one place where database failures become `ClusterError`s.
//! - [`pools`]: [`pools::Pools`], a pool per thread and the permits that bound one
//!   server's concurrent operations across threads.
//! - [`write`]: `Server::run_write` (on a `crate::wire` connection): a write is never
//!   sent twice.
//! - `link`: `Link`, the two kinds of pooled connection (diesel-async's and
//!   `crate::wire`'s) behind one trait.
//! - [`banlist`]: [`Condition`], the pure ban/lag rules, with unit tests.
//! - [`status`]: [`ServerStatus`], a serialisable snapshot for health and listings.
//! - [`connect`]: connection URLs (timeouts included) and pool building.
//! - `tls`: diesel-async connections, and the control plane's tokio-postgres links
//!   (`connect_postgres`), through TLS when `database.sslmode` asks for it, with the
//!   wire client's rustls configuration.
//! - `per_thread`: values kept one per thread (pools, Redis connections).
//! - `faults` (feature `faults`, tests only): fault points armed on a running server.

pub mod banlist;
pub mod connect;
#[cfg(feature = "faults")]
pub mod faults;
pub(crate) mod link;
pub(crate) mod per_thread;
pub mod pools;
pub mod server;
pub mod status;
mod tls;
pub mod write;

pub use banlist::{Condition, Lag, ServerStats, Unqualified};
pub use connect::{connection_url, encode};
pub use server::Server;
pub use status::ServerStatus;
pub use tls::connect as connect_postgres;
pub use write::WriteFailure;
