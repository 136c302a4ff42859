//! Black-box failure tests: real PostgreSQL servers of the local topology are stopped
//! (`setup.sh pg stop`, i.e. `pg_ctl stop -m immediate`) under a running gateway.
//!
//! The servers are shared, so the tests never overlap: each takes
//! [`support::serial`] first, and every outage restarts what it stopped, waits until it
//! accepts connections and its replica streams again, even when an assertion fails.
//!
//! - [`replica`]: a dead replica costs nothing but load on its primary.
//! - [`primary`]: a shard without primary (or without any server) fails fast and alone.
//! - [`pool`]: statement timeouts answer 504 and give their connection back.
//! - [`shutdown`]: SIGTERM lets the request in flight finish.

#[path = "../api/helpers.rs"]
mod helpers;
mod pool;
mod primary;
mod replica;
mod shutdown;
mod support;
