//! Each table's changes, in commit order per record, resumable from any gateway
//! (`GET /api/changes`).
//!
//! ## The log
//! A change log written in the same transaction as each write: a statement-level
//! trigger on `records` (migration `change_log`) adds a row per record a statement
//! inserted, updated or deleted to `shardgate_changes` on the record's shard, with the
//! writing transaction's id (`xid8`), the record's new version, its document (none for
//! a delete), the time and, for a part of a transaction on several shards, that
//! transaction's id (the part sets `shardgate.txn`). So the log commits with the write,
//! reaches the synchronous replica with it and survives a failover with it; logical
//! decoding would write nothing extra, but its replication slots stay on the old primary
//! on PostgreSQL 15 (pg_auto_failover does not carry them over), and a stream must not
//! lose its place at every failover.
//!
//! ## Reading it at cuts
//! A reader reads by snapshots, never by positions taken at insert time (a sequence
//! value taken first may commit last). Each page takes a cut across every shard
//! (`cluster::snapshot`: the fence that holds back decisions, so no transaction on
//! several shards is half visible) and reads, on each shard, the rows whose transaction
//! the cut's snapshot sees and the cursor's previous snapshot did not: the cut's delta.
//! Deltas follow each other with no gap and no overlap (a transaction is in exactly one:
//! the first snapshot that sees it), and commit order holds between them (a snapshot
//! that sees a transaction sees every one that committed before it on that server).
//! Within a delta, changes go shard by shard in version order; two writes of one record
//! are ordered by its row lock, so by version. A transaction on several shards is
//! visible at a cut on all its shards or on none, so its changes are all in one delta.
//! A page holds one delta, or part of one when the delta is longer than the page
//! (then the cursor names the cut and the last change sent, and the next page
//! continues the same delta).
//!
//! A page that ends its cut's delta is *resolved* at the time the cut was begun (the
//! gateway's clock): every write acknowledged before that time committed before the
//! cut's snapshots were taken, so it is in this page or an earlier one.
//!
//! ## From a snapshot ([`snapshot`])
//! A stream may start with the table as it was at a cut (a snapshot list), its cursor at
//! that cut's snapshots: the list and the log's deltas meet at the same snapshots.
//!
//! ## The cursor ([`cursor`])
//! Per shard the snapshot whose changes were all sent, plus the partly sent delta:
//! self-contained, so any gateway resumes it; a shard absent from it starts at its
//! oldest retained change. Retention ([`retention`]) deletes rows past it and, in the
//! same statement, raises the shard's horizon past them and records its snapshot; a
//! cursor whose snapshot had not seen a transaction that may have been deleted (below
//! the horizon, finished at that snapshot) is refused as gone, never served with a gap.
//!
//! ## Slot moves
//! The mover's sessions set `shardgate.origin = 'move'` and the trigger skips them: its
//! copy into the target, its catch-up and its cleanup of the source are not changes.
//! An import's connections (opened as the mover's) clear the mark: what an import brings
//! in, and what its abort removes, are changes of the table.
//! The log rows of a moved slot stay in the source's log (they are not copied): the
//! cursor keeps a position per shard, so the source's changes before the cutover are
//! read from the source and the target's after it from the target, none twice and none
//! lost. What this does not yet give: order per record across a cutover when the last
//! write on the source and the first on the target fall in different shards' halves of
//! one page or in neighbouring cuts (a consumer orders by `version`, which the mover
//! keeps rising across the move); and a shard removed takes its log with it.
//!
//! ## Layout
//! - [`cursor`]: [`ChangeCursor`], its text and its checks.
//! - [`page`]: [`Cluster::changes`](crate::cluster::Cluster::changes), a page at a cut,
//!   and [`Change`].
//! - [`snapshot`]: a stream's start at a consistent snapshot (`from=snapshot`).
//! - [`retention`]: pruning each shard's log to the retention.
//! - [`stats`]: what a gateway's streams did, per table, for its metrics.
//! - [`ticks`]: the one cut per tick that every waiting reader of a gateway shares.
//! - [`error`]: [`ChangesError`], why a page could not be served.

pub mod cursor;
pub mod error;
pub mod page;
pub mod retention;
pub mod snapshot;
pub mod stats;
pub mod ticks;

pub use self::cursor::ChangeCursor;
pub use self::error::ChangesError;
pub use self::page::{Change, ChangePage, Operation};
pub use self::stats::{StreamStats, TableStreams};
