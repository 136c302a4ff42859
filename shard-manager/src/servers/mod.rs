//! The PostgreSQL servers of every shard: pools, bounded operations, and the ban/lag
//! rules that decide which replica takes reads.
//!
//! ## Layout
//! - [`server`]: [`Server`]: one server's wire pools (one per worker thread), its
//!   permits, `run`/`probe` (reads and checks, bounded in time).
//! - [`pools`]: [`pools::Pools`], a pool per thread and the permits that bound one
//!   server's concurrent operations across threads.
//! - `read_batch`: `Server::find`: point reads that arrive together share one send.
//! - `write_batch`: `Server::write_in_group`: every single write and delete; those that
//!   arrive together commit in one transaction (group commit), a lone one is a group of
//!   one.
//! - `batch_queue`: the queues both wait in, one per thread, with no timer; `pending`:
//!   what a request holds while it waits there.
//! - [`batch_sizes`]: how many requests each batch carried, a histogram for `/metrics`.
//! - [`write`]: `Server::run_write` (on a `crate::wire` connection): a write is never
//!   sent twice; [`write_failure`]: what a write that cannot be acknowledged answers.
//! - [`failure`]: the one place where a wire failure becomes a `ClusterError`, by its
//!   SQLSTATE.
//! - [`banlist`]: [`Condition`], the pure ban/lag rules, with unit tests.
//! - [`status`]: [`ServerStatus`], a serialisable snapshot for health and listings.
//! - [`connect`]: connection URLs (timeouts included) and pool building.
//! - `per_thread`: values kept one per thread (pools, Redis connections).
//! - `faults` (feature `faults`, tests only): fault points armed on a running server.

pub mod banlist;
mod batch_queue;
pub mod batch_sizes;
pub mod connect;
pub mod failure;
#[cfg(feature = "faults")]
pub mod faults;
mod home;
mod pending;
pub(crate) mod per_thread;
pub mod pools;
mod read_batch;
pub mod server;
pub mod status;
pub mod write;
mod write_batch;
pub mod write_failure;

pub use banlist::{Condition, Lag, ServerStats, Unqualified};
pub use connect::{connection_url, encode};
pub use server::Server;
pub use status::ServerStatus;
pub use write_failure::WriteFailure;
