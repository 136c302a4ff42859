//! Moving slots between shards online, with their rows (`shard-manager move-slots`,
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
//!    nothing switches. Otherwise the slots' idempotency entries are copied, the target is told it owns the slots, the source
//!    drops them and the transaction commits: waiting writes are refused by the
//!    source (SG001) and rerouted by their gateway to the next map version, stored
//!    right after;
//! 5. **cleaning**: once every live gateway routes with that version, the source's rows
//!    of the slots are deleted.
//!
//! ## Layout
//! - [`state`]: phases, a move's progress and what an operator is told (pure).
//! - [`stuck`]: a move stopped, neither resumed nor aborted, past a threshold (or at
//!   the switch, where it may leave two owners): what health, status and the
//!   dashboard warn about (pure).
//! - [`store`]: moves in the metadata database.
//! - [`shard_conn`]: a connection to a shard's primary that names it in errors.
//! - [`capture`]: the source's change log.
//! - [`copy`]: the bulk copy of slots, and the throttle.
//! - [`replay`]: logged changes applied on the target.
//! - [`verify`]: per-slot counts and checksums on both sides.
//! - [`switch`]: the fence and the ownership change.
//! - [`target_cache`]: the target's old cache entries abandoned as a move starts.
//! - [`remembered`]: idempotency entries copied with their slots under the fence.
//! - [`plan`]: which slots a move takes (explicit, or a count), checked against the map.
//! - [`balance`]: `rebalance`'s plan: the moves that even out bytes or slots (pure).
//! - [`fault`]: test-only kill points (feature `faults`).
//! - [`mover`]: the phases in order: start, resume, abort, reverse.
//! - [`watch`]: a gateway's view of the moves, read in the background (it never
//!   queries the metadata database per request).

pub mod balance;
pub mod capture;
pub mod copy;
pub mod fault;
pub mod mover;
pub mod plan;
pub mod remembered;
pub mod replay;
pub mod shard_conn;
pub mod state;
pub mod store;
pub mod stuck;
pub mod switch;
pub mod target_cache;
pub mod verify;
pub mod watch;

pub use state::{Move, Phase};
pub use watch::{MoveWatch, Watcher};

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
    #[error("there is no move {0}: `shard-manager moves status` lists them")]
    UnknownMove(i64),
    #[error("no move was ever recorded (the metadata database has no moves table yet)")]
    NoMoves,
    #[error("the metadata database failed: {0}")]
    Query(#[from] tokio_postgres::Error),
    /// A move the command ran stopped part-way; it stays recorded where it stands. (The
    /// cause is in the message, not a `source`: printed chains would say it twice.)
    #[error("move {id} stopped: {cause}; `shard-manager moves status {id}` shows where it is, `shard-manager moves resume {id}` continues it")]
    Stopped { id: i64, cause: Box<MoveError> },
}
