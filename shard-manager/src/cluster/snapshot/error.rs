//! Why a read at a cut could not be served: a shard, the fence, a next page's cut let
//! go or not kept, a cursor, or the answer's read budget.

use crate::error::ClusterError;
use crate::routing::ShardId;
use crate::store::OverBudget;

/// Why a read at a cut could not be served.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A shard needed did not take part (down, saturated, timed out).
    #[error("a snapshot needs every shard it reads: {0}")]
    Shard(ClusterError),
    /// No fence: the gateway has no metadata database, or it failed.
    #[error("a snapshot read needs the cluster fence in the metadata database, which is unavailable ({reason})")]
    FenceUnavailable { reason: String },
    /// A next page's cut is no longer held (`what`: a list or a query).
    #[error("this {what}'s snapshot expired: its pages can be read for {held_ms} ms after its first page (at most {limit} such snapshots held per gateway); start the {what} again without a cursor")]
    Expired {
        what: &'static str,
        held_ms: u64,
        limit: usize,
    },
    /// The gateway holds as many cuts for next pages as it may.
    #[error("this gateway already holds {limit} snapshots for next pages of lists and queries, its limit; retry shortly, or ask a larger `limit` so the {what} fits one page")]
    HoldsFull { what: &'static str, limit: usize },
    /// The caller holds its share of the gateway's cuts ([`per_caller`](super::holds::per_caller)).
    #[error("the API key {caller:?} already holds {holds} of this gateway's {limit} snapshots for next pages, its share; read their pages to their end (or let them expire, 5 s) first, or ask a larger `limit` so the {what} fits one page")]
    CallerHoldsFull {
        what: &'static str,
        caller: String,
        holds: usize,
        limit: usize,
    },
    /// A cursor that is not a snapshot list's (or query's, as `what` says).
    #[error("the cursor is not one a snapshot {what} gave; pass back the `next` of its previous page unchanged")]
    BadCursor { what: &'static str },
    /// A snapshot query's cursor sent with another query.
    #[error("the cursor is a snapshot query's for another table, filter or sort; send it with the query that gave it (only `limit`, `fields`, `count` and `explain` may change), or start again without a cursor")]
    OtherQuery,
    /// The records found would pass the answer's read budget.
    #[error(transparent)]
    OverBudget(#[from] OverBudget),
}

impl SnapshotError {
    /// The shard a problem names (none for the fence).
    pub fn shard(&self) -> Option<ShardId> {
        match self {
            Self::Shard(e) => Some(e.shard()),
            _ => None,
        }
    }
}
