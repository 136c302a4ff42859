//! Why a page of a change stream could not be served.

use crate::cluster::snapshot::SnapshotError;
use crate::error::ClusterError;
use crate::routing::ShardId;

#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    /// The cursor's position on a shard is older than what its log retains: the
    /// changes since were (or may have been) pruned. The stream must start again.
    #[error("the cursor's position on {shard} is older than its change log retains (retention pruned transactions before {horizon}); start the stream again without a cursor, from the oldest change kept")]
    Gone { shard: ShardId, horizon: String },
    /// The cut the page is read at could not be taken.
    #[error(transparent)]
    Cut(#[from] SnapshotError),
    /// A shard's log could not be read.
    #[error(transparent)]
    Shard(#[from] ClusterError),
}
