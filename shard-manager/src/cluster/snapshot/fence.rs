//! The cluster fence as a snapshot reader sees it: held, it holds back every decision
//! of a transaction on several shards (control-plane's `txn::fence` implements it on
//! the metadata database's `DECISION_FENCE_LOCK`, taken exclusive; decision writes take
//! it shared). While it is held the set of transactions decided `commit` cannot grow,
//! so a reader can learn which of them may still be committing their parts, and check
//! that its snapshots tear none of them.

use std::collections::HashMap;
use std::time::Duration;

use crate::cluster::txn::log::LogFuture;
use crate::routing::ShardId;

/// Where the fence is taken (see the module doc).
pub trait CutFence: Send + Sync {
    /// Takes the fence: waits for the decisions being written to finish, then holds
    /// back new ones until the answer is released (or dropped: dropping it lifts the
    /// fence too, by closing its connection).
    fn hold(&self) -> LogFuture<'_, Box<dyn HeldFence>>;
}

/// The fence, held.
pub trait HeldFence: Send {
    /// Of `txids`, those whose logged decision is `commit` (fixed while the fence is
    /// held: no decision is written meanwhile), each with the shards it has parts on.
    fn committed<'a>(
        &'a mut self,
        txids: &'a [String],
    ) -> LogFuture<'a, HashMap<String, Vec<ShardId>>>;

    /// Lifts the fence; answers how long it was held.
    fn release(self: Box<Self>) -> LogFuture<'static, Duration>;
}
