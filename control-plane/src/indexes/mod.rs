//! Indexes for queries, made on every shard's primary online: asked for once
//! (`POST /api/indexes`, `shard-admin index create`), recorded in the metadata
//! database, built with `CREATE INDEX CONCURRENTLY` on each primary, shown per shard
//! as `building`, `valid` or `failed`, and dropped the same way. What an index holds and
//! which queries it serves is `shard_manager::store::query_index`'s.
//!
//! Never half made: one worker at a time works on an index on a shard (it holds a
//! session lock there while it builds or drops); a build that stopped without an end
//! (a gateway or shard restart) left its row `building` with no worker, and
//! [`reconcile`] drops the INVALID leftover and builds it again; a build that failed
//! (a cancel, a timeout, an error of the index's own) is recorded `failed` with the
//! error and its leftover dropped; it is tried again only when asked for again.
//!
//! ## Layout
//! - [`store`]: the wanted indexes and each shard's outcome, in the metadata database.
//! - [`on_shard`]: one primary: the index's state in its catalog, a build, a drop, under
//!   the index's lock there.
//! - [`reconcile`]: every primary brought to what is recorded (each index built where
//!   it is missing or interrupted, dropped where a drop was asked, the row removed once
//!   gone everywhere); the listing with each shard's state; the background task.
//! - [`new_shard`]: a shard joining the map built and waited for before it takes slots.

pub mod new_shard;
pub mod on_shard;
pub mod reconcile;
pub mod store;

pub use reconcile::{create, drop_index, list, reconcile, IndexShardState, IndexView, Reconciler};
pub use store::IndexRow;

use crate::map::MapError;

/// Why an index command failed. A refused command changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("the name {name} is taken by the index on table {table:?} fields {fields:?}; choose other fields")]
    Exists {
        name: String,
        table: String,
        fields: Vec<String>,
    },
    #[error("table {table:?} has {most} indexes, the most a table may have; drop one first (GET /api/indexes lists them)")]
    TooMany { table: String, most: usize },
    #[error("the index {0} is being dropped; ask again once it is gone")]
    Dropping(String),
    #[error("no index is named {0:?} (GET /api/indexes lists them)")]
    NoSuchIndex(String),
    #[error("{shard} ({server}) {doing}: {reason}")]
    Shard {
        shard: u32,
        server: String,
        doing: &'static str,
        reason: String,
    },
    #[error(transparent)]
    Map(#[from] MapError),
    #[error("metadata query failed: {0}")]
    Query(#[from] tokio_postgres::Error),
}
