//! All-or-nothing writes across shards. One shard: one round (`BEGIN`, the locks and
//! conditions, the writes, `COMMIT`), no 2PC. Several: every part `PREPARE TRANSACTION`
//! (`sg_<txid>_<shard>`, see [`gid`]), the decision written to the coordinator log
//! ([`log`]), then `COMMIT PREPARED` on each part; a part that fails before the decision
//! has every prepared part rolled back and `abort` logged. A gateway that dies between
//! leaves prepared parts that any live gateway's recovery resolves by the log
//! (control-plane `txn::recovery`), reported through [`InDoubt`].
//!
//! ## Layout
//! - this file: the request's operations, the outcome and the errors.
//! - [`coordinator`]: the protocol above, one attempt.
//! - [`deadline`]: the coordinator in a task of its own, so a client's timeout never
//!   cuts it off after PREPARE, and what that client is told.
//! - `replay`: the answer to a transaction sent again with its idempotency key.
//! - `rerouted`: the attempt again after a shard refused a slot (the retry policy).
//! - [`tally`]: transactions counted by protocol and outcome, for Prometheus.
//! - [`gid`]: prepared parts' names; [`log`]: the coordinator log's interface.

pub mod coordinator;
pub mod deadline;
pub mod gid;
pub mod log;
mod new_primary;
mod replay;
mod rerouted;
pub mod tally;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::cache::CacheUsage;
use crate::error::ClusterError;
use crate::routing::{RoutedKey, ShardId};
use crate::store::{Document, RecordId, TableName};
use crate::wal::WriteToken;

/// One operation of a transaction, parsed and routed at the edge.
#[derive(Debug, Clone)]
pub struct TxnOp {
    /// Its position in the request.
    pub index: usize,
    pub table: TableName,
    pub key: RoutedKey,
    pub id: RecordId,
    /// The document to upsert; None: delete the record.
    pub data: Option<Document>,
    /// The version the record must be at (0: must not exist).
    pub if_version: Option<i64>,
}

/// How many shards `ops` touch, as routed now.
fn shards_of(ops: &[TxnOp]) -> usize {
    let shards: std::collections::BTreeSet<ShardId> = ops.iter().map(|op| op.key.shard()).collect();
    shards.len()
}

/// What one operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpResult {
    pub index: usize,
    pub shard: ShardId,
    /// The record's new version; a delete's is the version its deletion took, None when
    /// there was no record.
    pub version: Option<i64>,
    /// An upsert that created the record.
    pub created: bool,
}

/// A committed transaction.
#[derive(Debug, Default)]
pub struct TxnOutcome {
    /// The coordinator's id (None: one shard, no 2PC).
    pub txid: Option<String>,
    /// One per operation, in request order.
    pub results: Vec<OpResult>,
    /// One read-your-writes token per shard touched, in shard order.
    pub tokens: Vec<WriteToken>,
    pub cache: CacheUsage,
    /// Applied before under the request's idempotency key: this is that answer.
    pub replayed: bool,
}

/// Why a transaction did not commit (or is not known to have).
#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    /// An `if_version` did not hold: nothing was written on any shard.
    #[error("operation {index}: record {table}/{id} (shard key {shard_key:?}) is at version {current}, not {expected} (0: absent); nothing was written")]
    ConditionFailed {
        index: usize,
        table: String,
        shard_key: String,
        id: String,
        current: i64,
        expected: i64,
        shard: ShardId,
    },
    /// A shard failed a part before the decision: nothing was written anywhere.
    #[error("{0}; nothing was written on any shard")]
    Shard(ClusterError),
    /// No coordinator log to decide a transaction on several shards.
    #[error("a transaction on several shards needs the coordinator log in the metadata database, which is unavailable ({reason}); nothing was written")]
    LogUnavailable { reason: String, shard: ShardId },
    /// Every part is prepared and the decision could not be read back: recovery
    /// resolves it within its bound (commit if the decision was logged, else roll back).
    #[error("transaction {txid}: its decision could not be confirmed ({reason}); every gateway's recovery resolves it within {bound_secs} s, all or nothing")]
    InDoubt {
        txid: String,
        reason: String,
        bound_secs: u64,
        shard: ShardId,
    },
    /// Sent again with its idempotency key, some parts found the key's entries and
    /// others did not (entries expired, or the key named another transaction there):
    /// nothing was written now.
    #[error("this Idempotency-Key's transaction was applied before, but {shard} no longer holds its record of every operation (expired?); nothing was written now: send a new key for a new transaction")]
    PartlyReplayed { shard: ShardId },
    /// Committed (the decision is logged) but this shard has not applied it yet;
    /// recovery applies it within its bound.
    #[error("transaction {txid} is committed, but {shard} did not confirm it ({reason}); recovery applies it there within {bound_secs} s")]
    Committing {
        txid: String,
        shard: ShardId,
        reason: String,
        bound_secs: u64,
    },
}

impl TxnError {
    /// Why it failed, as far as the retry policy goes (None: not a cause it names).
    pub fn cause(&self) -> Option<crate::error::retry::Cause> {
        use crate::error::retry::Cause;
        match self {
            Self::Shard(e) if e.refused_at().is_some() => Some(Cause::SlotRefused),
            // Before the decision, with nothing sent or the primary read-only; or a part
            // lost after its PREPARE was sent: `abort` is logged, so nothing of the
            // transaction stands either way.
            Self::Shard(e) => e
                .primary_lost()
                .map(|(_, _, cause)| cause)
                .or_else(|| e.primary_lost_after_send().map(|_| Cause::LostAfterSend)),
            Self::ConditionFailed { .. } => Some(Cause::ConditionFailed),
            Self::Committing { .. } => Some(Cause::AfterDecision),
            _ => None,
        }
    }

    /// The shard a problem names.
    pub fn shard(&self) -> ShardId {
        match self {
            Self::ConditionFailed { shard, .. }
            | Self::LogUnavailable { shard, .. }
            | Self::InDoubt { shard, .. }
            | Self::Committing { shard, .. }
            | Self::PartlyReplayed { shard } => *shard,
            Self::Shard(e) => e.shard(),
        }
    }
}

/// Prepared parts of ours seen by the last recovery round, for `/api/health` and
/// Prometheus.
#[derive(Debug, Default)]
pub struct InDoubt {
    count: AtomicU64,
    oldest_ms: AtomicU64,
    resolved: AtomicU64,
}

impl InDoubt {
    /// A round saw `count` prepared parts, the oldest `oldest_ms` old, and resolved
    /// `resolved` of them.
    pub fn note(&self, count: u64, oldest_ms: u64, resolved: u64) {
        self.count.store(count, Ordering::Relaxed);
        self.oldest_ms.store(oldest_ms, Ordering::Relaxed);
        self.resolved.fetch_add(resolved, Ordering::Relaxed);
    }

    /// (prepared parts seen, the oldest's age in ms, resolved since start).
    pub fn get(&self) -> (u64, u64, u64) {
        (
            self.count.load(Ordering::Relaxed),
            self.oldest_ms.load(Ordering::Relaxed),
            self.resolved.load(Ordering::Relaxed),
        )
    }
}
