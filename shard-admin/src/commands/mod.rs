//! The commands that change (or show) the cluster's shape and who may use it.
//!
//! - [`map`]: `init` and `map show | history | assign-slots | sync`.
//! - [`moves`]: `move-slots` and `moves status | resume | abort | reverse`.
//! - [`add_shard`]: `add-shard`: a new shard joins the map and takes its fair share of
//!   slots, moved online.
//! - [`rebalance`]: `rebalance --plan | --apply`, by bytes or slots.
//! - [`remove_shard`]: `remove-shard`: a shard emptied online, then retired.
//! - [`import`]: `import` and `imports status | abort`: a table of an unsharded database
//!   copied in while it takes writes, then cut over.
//! - [`switchover`]: `switchover`: a shard's primary handed to a replica, planned.
//! - [`keys`]: `keys create | list | revoke | rotate | limit`.
//! - [`index`]: `index create | list | drop`: indexes for queries on every primary.
//! - [`backup`]: `backup` and `backups list`: every server backed up with pgBackRest,
//!   and a cluster restore point recorded; `restore --point`: every server back to one.
//! - [`export`]: `export`: a table of every shard written atomically to a file, as NDJSON
//!   or CSV.
//! - [`query`]: `query`: records that match conditions, sorted, a page at a time (or
//!   every page) across every shard, as `POST /api/query` answers.
//! - [`changes`]: `changes tail`: a table's change stream, one JSON line per change,
//!   as `GET /api/changes` serves it.
//! - [`stored_map`]: the cluster a reading command goes through, on the stored map.

pub mod add_shard;
pub mod backup;
pub mod changes;
pub mod export;
pub mod import;
pub mod index;
pub mod keys;
pub mod map;
pub mod moves;
pub mod query;
pub mod rebalance;
pub mod remove_shard;
pub mod stored_map;
pub mod switchover;
