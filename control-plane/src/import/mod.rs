//! Importing a table of an existing, unsharded PostgreSQL database into Shardgate
//! (`shard-admin import`, `imports status | abort`), while the source keeps taking
//! writes, then cutting over.
//!
//! The same shape as a slot move, with a foreign source:
//! 1. **copying**: a trigger on the source table (in the writer's own transaction)
//!    starts logging the (key, id) of every row changed; then the table is read in
//!    pages in (id, key) order, each row routed by the stored map and upserted as a
//!    record (`data` = the row as JSON) on its shard. Each page's last row is the
//!    checkpoint a killed import resumes after;
//! 2. **syncing**: the logged keys are replayed: each key's current source row is
//!    upserted, or its record deleted when the row is gone. The source still takes
//!    writes; running the command again catches up again;
//! 3. **cutting_over** (`--cutover`): the fence. One source transaction locks the
//!    table against writes (readers go on), replays the last changes, compares the
//!    source with the shards (row count and a checksum of key, id and row), and on a
//!    match freezes the table (a trigger refuses every later write, naming where the
//!    data went), removes the capture and commits. Writers that waited get that
//!    refusal: the application now writes through the gateway;
//! 4. **done**.
//!
//! Shard writes claim their slots like a gateway's write, so an import runs safely
//! beside slot moves (a slot that moved meanwhile is refused, the map reloaded, the
//! page written again). A shard that stops answering in the middle of a run (its
//! primary lost, a replica promoted) is waited for: the run reads the map again and
//! goes on from its stored state against the primary named then ([`retry`]).
//!
//! The bookkeeping (the row, claiming, progress, resume, abort, the replay loops) is
//! the jobs module's ([`crate::jobs`]); an import is a job of kind [`ImportDetail`].
//!
//! ## Layout
//! - [`spec`]: the source table, its columns, and the SQL built from them (pure).
//! - [`state`]: phases and their transitions, an import's own columns, advice (pure).
//! - [`store`]: the `imports` table as a kind of job, and the queries only imports make.
//! - [`source`]: the source database: connection, catalog, checks, capture, log.
//! - [`replay`]: the source's change log replayed on the shards (a
//!   [`crate::jobs::replay::ChangeLog`]).
//! - [`shards`]: records upserted and deleted on their shards, by the stored map.
//! - [`verify`]: the source's digest against the shards'.
//! - [`retry`]: which failures a run waits out (a shard that did not answer, as in a
//!   failover), and for how long (pure).
//! - [`runner`]: the phases in order: start or resume, sync, cut over; a shard that
//!   stops answering is waited for and found again through the map.
//! - [`abort`]: an import rolled back before its cut-over.

pub mod abort;
pub mod replay;
pub mod retry;
pub mod runner;
pub mod shards;
pub mod source;
pub mod spec;
pub mod state;
pub mod store;
pub mod verify;

pub use state::{Import, ImportDetail, Phase};
pub use store::Imports;

use crate::jobs::JobError;
use crate::map::MapError;
use crate::moves::MoveError;

/// Why an import command stopped. A refusal changed nothing; any other error leaves
/// the import where `imports status` says, to be resumed or aborted.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Refused(String),
    /// A run that stopped part-way (what it did stays, to be continued): the message
    /// says where it is and how to go on.
    #[error("{0}")]
    Stopped(String),
    #[error("the source database ({source_db}) failed while {doing}: {reason}")]
    Source {
        source_db: String,
        doing: &'static str,
        reason: String,
    },
    /// A shard failed; the message names it.
    #[error(transparent)]
    Shard(#[from] MoveError),
    #[error(transparent)]
    Map(#[from] MapError),
    #[error("row (key {key:?}, id {id:?}) of {table} cannot become a record: {reason}; fix it in the source and run the import again")]
    BadRow {
        table: String,
        key: String,
        id: String,
        reason: String,
    },
    #[error("verification refused the cut-over: {0}; nothing switched, the source takes writes again (run the import again to retry)")]
    Verify(String),
    #[error("the metadata database's imports are unreadable: {0}")]
    Corrupt(String),
    #[error("there is no import {0}: `shard-admin imports status` lists them")]
    Unknown(i64),
    #[error("the metadata database failed: {0}")]
    Query(#[from] tokio_postgres::Error),
    /// The bookkeeping refused a step (a transition out of order, an import changed by
    /// another process, no imports table).
    #[error(transparent)]
    Job(JobError),
}

impl From<JobError> for ImportError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::Unknown { id, .. } => ImportError::Unknown(id),
            JobError::Corrupt { why, .. } => ImportError::Corrupt(why),
            JobError::Query(e) => ImportError::Query(e),
            JobError::Busy { id, .. } => ImportError::Refused(format!(
                "import {id} is being worked on by another process (it holds the import's lock); `shard-admin imports status {id}` follows it"
            )),
            e => ImportError::Job(e),
        }
    }
}
