//! What a switchover can answer besides done.

use super::Undo;
use crate::map::MapError;
use shard_manager::routing::ShardId;

#[derive(Debug, thiserror::Error)]
pub enum SwitchoverError {
    /// Refused before anything was changed: the text says why.
    #[error("refused: {0}; nothing was changed")]
    Refused(String),
    /// The HA manager's monitor could not be asked.
    #[error("the HA manager's monitor ({monitor}) {doing}: {reason}")]
    Monitor {
        monitor: String,
        doing: &'static str,
        reason: String,
    },
    /// A server of the shard let the switchover down.
    #[error("{shard} ({server}) {doing}: {reason}")]
    Server {
        shard: ShardId,
        server: String,
        doing: &'static str,
        reason: String,
    },
    /// A bound passed; the text says what was waited for and what was left.
    #[error("{0}")]
    TimedOut(String),
    /// The command was told to stop (`SIGINT`: Ctrl-C, or `SIGTERM`) before it was done.
    #[error("interrupted by {0}")]
    Interrupted(&'static str),
    /// Ended (failed, timed out, interrupted) after the drain began: why, then what
    /// became of the drain.
    #[error("{cause}; {undo}")]
    Undone {
        cause: Box<SwitchoverError>,
        undo: Undo,
    },
    #[error(transparent)]
    Map(#[from] MapError),
}
