//! Moving slots between shards online, with their rows (`shard-admin move-slots`,
//! `moves status | resume | abort | reverse`).
//!
//! A move goes through phases recorded in the metadata database, so a mover killed at
//! any point is resumed (or rolled back) by the same command from where it stopped:
//! 1. **capturing**: the source starts logging every change to the slots (a trigger in
//!    the writer's own transaction, the `slot_moves` migration);
//! 2. **copying**: the slots' rows are streamed from the source to the target with
//!    binary COPY, a group of slots per transaction, throttled by the target's replica
//!    lag; a group copied again replaces what it copied before;
//! 3. **catching_up**: the logged keys are replayed on the target (their current rows
//!    read from the source), until few remain;
//! 4. **switching**: the fence. One source transaction takes the slots' write locks,
//!    so writes to them wait; the last changes are replayed, source and target are
//!    compared per slot (count and checksum of key, id and version); on a difference
//!    nothing switches. Otherwise the slots' idempotency entries are copied, the target is
//!    told it owns the slots, the source drops them and raises its cache epoch, and the
//!    transaction commits: waiting writes are refused by the source (SG001) and
//!    rerouted by their gateway to the next map version, stored right after the caches
//!    are told that the source's old epoch is retired (`caches`);
//! 5. **cleaning**: once every live gateway routes with that version, the source's rows
//!    of the slots are deleted.
//!
//! The bookkeeping (the row, claiming, progress, resume, abort, the stuck rule, the
//! replay loops) is the jobs module's ([`crate::jobs`]); a move is a job of kind
//! [`MoveDetail`].
//!
//! ## Layout
//! - [`state`]: phases and their transitions, a move's own columns and what an
//!   operator is told (pure).
//! - [`stuck`]: a move stopped, neither resumed nor aborted, past a threshold (or at
//!   the switch, where it may leave two owners): what health, status and the
//!   dashboard warn about (pure).
//! - [`store`]: the `moves` table as a kind of job, and the queries only moves make.
//! - [`shard_conn`]: a connection to a shard's primary that names it in errors.
//! - [`capture`]: the source's change log.
//! - [`copy`]: the bulk copy of slots, and the throttle.
//! - [`replay`]: the source's change log replayed on the target (a
//!   [`crate::jobs::replay::ChangeLog`]).
//! - [`verify`]: per-slot counts and checksums on both sides.
//! - [`switch`]: the fence and the ownership change.
//! - [`caches`]: the cache epochs a move raises, and telling every cache in use.
//! - [`idempotency_entries`]: idempotency entries copied with their slots under the fence.
//! - [`plan`]: which slots a move takes (explicit, or a count), checked against the map.
//! - [`balance`]: `rebalance`'s plan: the moves that even out bytes or slots (pure).
//! - [`auto_balance`]: the automatic balancer by load (`[balancer] auto`): one runner,
//!   hysteresis, spacing, an hourly cap.
//! - [`fault`]: test-only kill points (feature `faults`).
//! - [`mover`]: the phases in order: start, resume.
//! - [`undo`]: abort (before the switch) and reverse (after it).
//! - [`spans`]: a move's run and the balancer's rounds as traces of their own (plain
//!   `tracing` spans, target `shardgate::moves`, which the gateway exports).
//! - [`watch`]: a gateway's view of the moves, read in the background (it never
//!   queries the metadata database per request).

pub mod auto_balance;
pub mod balance;
pub mod caches;
pub mod capture;
pub mod copy;
pub mod fault;
pub mod idempotency_entries;
pub mod mover;
pub mod plan;
pub mod replay;
pub mod shard_conn;
pub mod spans;
pub mod state;
pub mod store;
pub mod stuck;
pub mod switch;
pub mod undo;
pub mod verify;
pub mod watch;

pub use state::{Move, MoveDetail, Phase};
pub use store::Moves;
pub use watch::{MoveWatch, Watcher};

use crate::jobs::JobError;
use crate::map::MapError;
use shard_manager::routing::ShardId;

/// Why a move command stopped. A refusal changed nothing; any other error leaves the
/// move where `moves status` says, to be resumed or aborted.
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("{0}")]
    Refused(String),
    #[error("{shard} ({server}) failed while {doing}: {reason}")]
    Shard {
        shard: ShardId,
        server: String,
        doing: &'static str,
        reason: String,
        /// A lost connection or a restarting server: the mover waits and tries again.
        transient: bool,
    },
    #[error(transparent)]
    Map(#[from] MapError),
    #[error("verification refused the switch: {0}; nothing switched, the move is back to catching up (resume it to try again)")]
    Verify(String),
    #[error("the metadata database's moves are unreadable: {0}")]
    Corrupt(String),
    #[error("there is no move {0}: `shard-admin moves status` lists them")]
    UnknownMove(i64),
    #[error("no move was ever recorded (the metadata database has no moves table yet)")]
    NoMoves,
    #[error("the metadata database failed: {0}")]
    Query(#[from] tokio_postgres::Error),
    /// The bookkeeping refused a step (a transition out of order, a move changed by
    /// another process).
    #[error(transparent)]
    Job(JobError),
    /// A move the command ran stopped part-way; it stays recorded where it stands. (The
    /// cause is in the message, not a `source`: printed chains would say it twice.)
    #[error("move {id} stopped: {cause}; `shard-admin moves status {id}` shows where it is, `shard-admin moves resume {id}` continues it")]
    Stopped { id: i64, cause: Box<MoveError> },
}

impl MoveError {
    /// How long to wait before trying again from the stored state, or None: not worth
    /// another try. A shard that did not answer (a lost connection, a restarting or
    /// promoted server): a second, then the next try reads the map again and opens the
    /// primary it names then. The map changed by someone else (a failover recorded)
    /// between the mover's read and its store: at once, since the changed map is there
    /// to read; where the source already gave the slots up, the next try stores them
    /// (writes to them are refused meanwhile).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            MoveError::Shard {
                transient: true, ..
            } => Some(std::time::Duration::from_secs(1)),
            MoveError::Map(MapError::Changed { .. }) => Some(std::time::Duration::ZERO),
            _ => None,
        }
    }
}

impl From<JobError> for MoveError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::Unknown { id, .. } => MoveError::UnknownMove(id),
            JobError::NoTable { .. } => MoveError::NoMoves,
            JobError::Corrupt { why, .. } => MoveError::Corrupt(why),
            JobError::Query(e) => MoveError::Query(e),
            JobError::Busy { id, .. } => MoveError::Refused(format!(
                "move {id} is being worked on by another process (it holds the move's lock); `shard-admin moves status` follows it"
            )),
            e => MoveError::Job(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shard_manager::MapVersion;
    use std::time::Duration;

    fn shard(transient: bool) -> MoveError {
        MoveError::Shard {
            shard: ShardId(0),
            server: "127.0.0.1:1".into(),
            doing: "copying rows out",
            reason: "connection closed".into(),
            transient,
        }
    }

    #[test]
    fn a_lost_shard_is_tried_again_after_a_second_and_a_changed_map_at_once() {
        assert_eq!(shard(true).retry_after(), Some(Duration::from_secs(1)));
        let changed = MapError::Changed {
            expected: MapVersion(2),
            found: MapVersion(3),
        };
        assert_eq!(MoveError::Map(changed).retry_after(), Some(Duration::ZERO));
    }

    #[test]
    fn refusals_and_failed_verifications_are_not_tried_again() {
        assert_eq!(shard(false).retry_after(), None);
        assert_eq!(MoveError::Refused("no".into()).retry_after(), None);
        assert_eq!(
            MoveError::Verify("1 slot differs".into()).retry_after(),
            None
        );
        assert_eq!(MoveError::Map(MapError::NotInitialised).retry_after(), None);
        assert_eq!(MoveError::UnknownMove(7).retry_after(), None);
    }
}
