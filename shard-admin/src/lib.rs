//! # shard-admin
//!
//! The `shard-admin` admin CLI (src/bin, its command line in [`cli`]) and the commands
//! behind it. It sits on top: it drives the control plane and the request path crate
//! (`shard-manager`) and nothing depends on it except the gateway's tests. Blocking
//! work runs on diesel with r2d2 (seeding, planning, benchmarks); migrations, the map,
//! moves, imports and keys go through the library calls the gateways use too.
//!
//! ## Layout
//! - [`cli`]: the command line: parsing, dispatch, the audit line, the exit code.
//! - [`migrate`]: the shards' migrations applied to every primary (by
//!   `control_plane::migrations`, the one runner); database creation.
//! - [`connect`]: direct connections and scratch databases for the tools.
//! - [`audit`]: the audit line every admin command that changes something leaves.
//! - [`commands`]: the cluster's shape and access: `init`, `map`, `move-slots`/`moves`,
//!   `add-shard`, `rebalance`, `remove-shard`, `import`/`imports`, `keys`, `index`, `export`,
//!   `backup`/`backups`.
//! - [`tools`]: the learning tools: `plan`, `seed` (with its record generator) and
//!   `bench`, and the progress bars they draw.
//! - [`terminal`]: colour and progress bars only on a terminal, `NO_COLOR` honoured.
//! - [`traces`]: the log lines on standard error, and the moves run here exported as
//!   OpenTelemetry traces when an OTLP endpoint is named (the `telemetry` crate).

pub mod audit;
pub mod cli;
pub mod commands;
pub mod connect;
pub mod migrate;
pub mod terminal;
pub mod tools;
pub mod traces;

pub use connect::CommandError;
pub use migrate::{
    admin_pool, create_database, migrate_all, migrate_cluster, migrate_database, migrate_server,
    AdminError,
};
