//! What a request holds while it waits for its batch (`batch_queue`): a point read
//! (`read_batch`) or a single write for a group commit (`write_batch`), each with where
//! its answer goes.

use tokio::sync::oneshot;

use super::home::Home;
use super::write_failure::WriteFailure;
use crate::error::ClusterError;
use crate::store::{CommitPosition, Record};
use crate::wire::read::PointRead;
use crate::wire::{Framed, Rows};

/// A point read's answer.
pub(super) type ReadAnswer = Result<Option<Record>, ClusterError>;

/// A point read waiting for its batch.
pub(super) struct PendingRead {
    pub(super) read: PointRead,
    pub(super) reply: oneshot::Sender<ReadAnswer>,
    /// The span of the request it answers, which its batch's span links with
    /// (`crate::spans::batch`); none when spans are not recorded.
    pub(super) requester: tracing::Span,
}

/// A write's answer from its group: its own rows and the position after the commit.
pub(super) type WriteAnswer = Result<(Rows, CommitPosition), WriteFailure>;

/// A single write waiting for its group.
pub(super) struct PendingWrite {
    pub(super) framed: Framed,
    pub(super) reply: oneshot::Sender<WriteAnswer>,
    /// Whether it was refused once already with a refusal worth one more try.
    pub(super) tried: bool,
    /// The span of the request it answers, which its group's span links with
    /// (`crate::spans::batch`); none when spans are not recorded.
    pub(super) requester: tracing::Span,
    /// The runtime its request waits on: a group with it may be driven there.
    pub(super) home: Home,
    /// When its own time runs out, counted from when it joined its queue: past it, a
    /// write not yet sent in a round that could commit is answered as timed out, not
    /// committed.
    pub(super) deadline: tokio::time::Instant,
}
