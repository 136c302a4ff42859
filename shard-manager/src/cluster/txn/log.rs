//! The coordinator log as the request path sees it: a decision per transaction on
//! several shards, kept in the metadata database (control-plane's `txn::log` implements
//! it; the gateway hands it to [`Cluster::set_decision_log`](super::super::Cluster)).
//! The first decision written for a transaction stands: a coordinator that logs
//! `commit` after a recovery logged `abort` reads `abort` back, and rolls back.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::routing::ShardId;

/// A logged decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Commit,
    Abort,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Commit => "commit",
            Decision::Abort => "abort",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "commit" => Some(Decision::Commit),
            "abort" => Some(Decision::Abort),
            _ => None,
        }
    }
}

/// The longest any call of a [`DecisionLog`] may take before it answers an error: a
/// step of the coordinator's bound ([`super::deadline::steps_bound`]).
pub const CALL_BOUND: Duration = Duration::from_secs(3);

/// A log call's future; the error is the reason, for the answer and the logs.
pub type LogFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// Where decisions are kept (see the module doc).
pub trait DecisionLog: Send + Sync {
    /// Writes `wanted` for `txid` unless a decision is there already; returns the
    /// decision that stands. Durable once it returns.
    fn settle<'a>(
        &'a self,
        txid: &'a str,
        wanted: Decision,
        shards: &'a [ShardId],
    ) -> LogFuture<'a, Decision>;

    /// The decisions logged for these transactions (a transaction absent: none yet).
    fn decisions<'a>(&'a self, txids: &'a [String]) -> LogFuture<'a, HashMap<String, Decision>>;

    /// Every part of `txid` is resolved (kept for the record; never read to decide).
    fn finished<'a>(&'a self, txid: &'a str) -> LogFuture<'a, ()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_read_back_as_written() {
        for d in [Decision::Commit, Decision::Abort] {
            assert_eq!(Decision::parse(d.as_str()), Some(d));
        }
        assert_eq!(Decision::parse("maybe"), None);
    }
}
