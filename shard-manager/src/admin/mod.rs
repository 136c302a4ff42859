//! Admin work on the synchronous diesel path: migrations, database creation, and the
//! learning tools `plan`, `seed` and `bench`.
//!
//! ## Layout
//! - [`migrate`]: embedded migrations, applied to every primary; database creation.
//! - [`connect`]: direct connections and scratch databases for the tools below.
//! - [`plan`]: what each strategy would move if a shard were added, from the data.
//! - [`map_cmd`]: `init` and `map show | history | assign-slots | sync`.
//! - [`moves_cmd`]: `move-slots` and `moves status | resume | abort | reverse`.
//! - [`add_shard_cmd`]: `add-shard`: a new shard joins the map and takes its fair share
//!   of slots, moved online.
//! - [`rebalance_cmd`]: `rebalance --plan | --apply`, by bytes or slots.
//! - [`remove_shard_cmd`]: `remove-shard`: a shard emptied online, then retired.
//! - [`import_cmd`]: `import` and `imports status | abort`: a table of an unsharded
//!   database copied in while it takes writes, then cut over.
//! - [`keys_cmd`]: `keys create | list | revoke | rotate | limit`.
//! - [`audit`]: the audit line every admin command that changes something leaves.
//! - [`generate`]: realistic fake records, a pure function of (table, seed, n).
//! - [`seed`]: generated records, routed and bulk-loaded into the shards.
//! - [`bench`](mod@bench): one workload against a single database and against the shards.
//! - [`progress`]: the progress bars `seed` and `bench` draw.

pub mod add_shard_cmd;
pub mod audit;
pub mod bench;
pub mod connect;
pub mod generate;
pub mod import_cmd;
pub mod keys_cmd;
pub mod map_cmd;
pub mod migrate;
pub mod moves_cmd;
pub mod plan;
pub mod progress;
pub mod rebalance_cmd;
pub mod remove_shard_cmd;
pub mod seed;

pub use connect::CommandError;
pub use migrate::{
    admin_pool, create_database, migrate_all, migrate_cluster, migrate_server, AdminError,
    MIGRATIONS,
};
