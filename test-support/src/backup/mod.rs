//! Backups with real pgBackRest on private servers, shared by the admin CLI's backup
//! tests and its backup benchmark: never the shared topology.
//!
//! - [`server`]: private PostgreSQL primaries with WAL archived into a private
//!   repository, one stanza each; restored copies.
//! - [`cli`]: `shard-admin` run against them, and the servers prepared for it.
//! - [`load`]: writers and transferers (two-phase commits through the coordinator log)
//!   that run while a restore point is named.
//! - [`load_cluster`]: two shards and a metadata server that load runs on, started and
//!   prepared, and the load started on them.

pub mod cli;
pub mod load;
pub mod load_cluster;
pub mod server;
