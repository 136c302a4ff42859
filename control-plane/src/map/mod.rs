//! The versioned shard map, shared by every gateway through the metadata database and
//! enforced by the shards themselves.
//!
//! The config file seeds the map once (`shard-admin init`); afterwards the metadata
//! database is the truth. A change (`shard-admin map assign-slots`) first tells the
//! shards (the ones losing slots, then the ones gaining), then stores the next version
//! with its history line and notifies; gateways follow within a second (LISTEN/NOTIFY,
//! a poll as fallback). A gateway that still routes with an older map is harmless: the
//! shard refuses a slot it does not own, and the gateway reloads and retries once.
//!
//! ## Layout
//! - [`assign`]: `SLOTS=SHARD` entries, checked against a map before anything changes.
//! - [`schema`]: the metadata database's tables: the migrations of `metadata-migrations/`.
//! - [`meta`]: reading and writing the map there.
//! - [`ownership`]: telling each shard its slots.
//! - [`change`]: the admin operations (init, assign, sync) in their safe order.
//! - [`add_shard`]: a new shard joins the map owning no slot.
//! - [`remove_shard`]: an emptied shard is retired (kept in the map, owning nothing).
//! - [`gateways`]: heartbeats and the list of live gateways.
//! - [`figures`]: each gateway's analytics figures, published for the cluster view.
//! - [`promotions`]: the failovers and switchovers of the history, for gateways to show.
//! - [`follower`]: the task that keeps a gateway's map (`live_map::MapState`) current.
//!
//! One version of the map ([`ShardMap`]) and the map a gateway routes with
//! ([`MapState`]) belong to the request path (`shard_manager::live_map`).

pub mod add_shard;
pub mod assign;
pub mod change;
pub mod figures;
pub mod follower;
pub mod gateways;
pub mod meta;
pub mod ownership;
pub mod promotions;
pub mod remove_shard;
pub mod schema;

pub use follower::Follower;
pub use gateways::Identity;
pub use shard_manager::live_map::{GatewayInfo, MapState, MapStatus, ShardEntry, ShardMap};

use shard_manager::routing::{MapVersion, ShardId};

/// Why the map could not be read or changed. Nothing was changed unless the text says so.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("the metadata database at {address} did not answer: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("the metadata database holds no map yet: run `shard-admin init` (./setup.sh up does)")]
    NotInitialised,
    #[error("the metadata database's map is unreadable: {0}")]
    Corrupt(String),
    #[error("the map changed while this command ran (expected {expected}, found {found}); nothing was changed by this command: run it again")]
    Changed {
        expected: MapVersion,
        found: MapVersion,
    },
    #[error("{shard} ({server}) could not be told its slots: {reason}")]
    Shard {
        shard: ShardId,
        server: String,
        reason: String,
    },
    #[error(transparent)]
    Assign(#[from] assign::AssignError),
    #[error("{0}")]
    Invalid(String),
    #[error("metadata migration {name} failed: {source}")]
    Migration {
        name: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("metadata query failed: {0}")]
    Query(#[from] tokio_postgres::Error),
}

impl From<crate::migrations::MigrationError> for MapError {
    fn from(err: crate::migrations::MigrationError) -> Self {
        use crate::migrations::MigrationError;
        match err {
            MigrationError::Apply { name, source } => Self::Migration { name, source },
            MigrationError::Record(e) => Self::Query(e),
        }
    }
}

impl MapError {
    /// A query error, told apart from "no map tables yet".
    pub(crate) fn from_query(e: tokio_postgres::Error) -> Self {
        let undefined = e
            .as_db_error()
            .is_some_and(|d| *d.code() == tokio_postgres::error::SqlState::UNDEFINED_TABLE);
        match undefined {
            true => Self::NotInitialised,
            false => Self::Query(e),
        }
    }
}
