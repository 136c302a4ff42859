//! Reads across shards at one cut: no transaction on several shards is half visible.
//!
//! A transaction on several shards is visible on a shard once its part there is
//! committed (`COMMIT PREPARED`), which follows its decision in the coordinator log.
//! A cut is opened so:
//! 1. a session per shard checks a connection out of the shard's primary ([`session`]);
//! 2. the fence is taken ([`fence`]): no decision is written while it is held;
//! 3. each session, in one round trip, lists our prepared parts on its shard (with
//!    their transaction ids) and then opens `REPEATABLE READ READ ONLY` and reads the
//!    snapshot back (`pg_current_snapshot()`);
//! 4. of the transactions those lists name, the log says which are decided `commit`
//!    (and on which shards): only their parts may still be committing. On each shard of
//!    the cut, such a part is visible iff it was not listed (it had committed) or its
//!    transaction id is visible in the shard's snapshot ([`visibility`]). A transaction
//!    visible on one shard of the cut and not on another is torn ([`torn`]); if none
//!    is, the cut stands as taken. Else the shards where a torn one is not yet visible
//!    have their snapshot taken again, every millisecond, until none is torn. Past
//!    [`COMMIT_WAIT`] (a coordinator that died between its commits, or is that slow)
//!    the gateway finishes the part by the log itself, as the recovery would (`COMMIT
//!    PREPARED`: the decision is commit and cannot change), and takes the snapshot
//!    again. A `COMMIT PREPARED` refused (another session is committing that part:
//!    PostgreSQL answers that it is busy) is looked at again a millisecond later; past
//!    [`FENCE_WAIT`] the read fails (503, naming the shard) and the fence is lifted;
//! 5. the fence is released, then every read runs in the sessions' snapshots.
//!
//! A list or a query longer than a page keeps its cut ([`Cluster::page_at_cut`](crate::cluster::Cluster::page_at_cut)): the
//! first page's sessions export their snapshots and are kept for [`HOLD`] from the
//! start (at most [`held_limit`] cuts per gateway, each a pooled connection per shard);
//! the `next` cursor names the exports, and the next page, through any gateway, imports
//! them (`SET TRANSACTION SNAPSHOT`) and reads the same cut without the fence. Past the
//! bound the exports are gone and the page is refused ([`SnapshotError::Expired`]),
//! never read at another cut.
//!
//! Why this is a cut: no decision is written while the fence is held, so the
//! transactions decided `commit` before it are a fixed set, and every part of each was
//! prepared before its decision, so before the lists. Each of them is visible on every
//! shard of the cut or on none (step 4): on none, it commits after the cut. One decided
//! after the fence commits its parts after its decision, so after the fence, so after
//! every snapshot; one never decided `commit` is visible nowhere. What it does not
//! order: commits on one shard alone (single-shard writes, never held back), which
//! PostgreSQL gives no common order.
//!
//! ## Layout
//! - [`cut`]: [`Cut`] and the protocol above that opens one (steps 1 to 5).
//! - [`error`]: [`SnapshotError`], why a read at a cut could not be served.
//! - [`pages`]: any page at a cut: a first one opens the cut and keeps it for the next
//!   pages, a later one imports it.
//! - [`list`]: a list's pages at a cut; [`query`]: a query's (its statements and merge
//!   are the ones `cluster::query` runs at other consistencies).
//! - [`read_many`]: point reads at a cut.
//! - [`fence`]: the fence's interface; [`session`]: one shard's held transaction;
//!   [`page`]: the cursor of a list's or a query's next page at its cut.
//! - [`visibility`]: whether a transaction id is visible in a snapshot; [`torn`]:
//!   whether a cut's snapshots tear a transaction decided `commit`.
//! - [`holds`]: the cuts kept for next pages, and each caller's share of them.

pub mod cut;
pub mod error;
pub mod fence;
pub mod holds;
pub mod list;
pub mod page;
pub mod pages;
pub mod query;
pub mod read_many;
pub mod session;
pub mod torn;
pub mod visibility;

pub use self::cut::{Cut, ShardCut, COMMIT_WAIT, FENCE_WAIT, HOLD};
pub use self::error::SnapshotError;
pub use self::holds::held_limit;
pub use self::list::CutPage;
pub use self::page::PageCursor;
pub use self::query::CutQuery;
pub use self::read_many::CutRead;
