//! Transactions counted since the gateway started, by protocol (one shard: one round;
//! several: two-phase commit) and by how each ended, for the gateway's Prometheus
//! endpoint. Counted once per request, after its retry. Pure counters; no I/O.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{TxnError, TxnOutcome};

/// How a transaction was run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    OneShard,
    TwoPhase,
}

impl Protocol {
    pub const ALL: [Protocol; 2] = [Protocol::OneShard, Protocol::TwoPhase];

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::OneShard => "one-shard",
            Protocol::TwoPhase => "two-phase",
        }
    }

    /// The protocol for a transaction on `shards` shards.
    pub fn for_shards(shards: usize) -> Self {
        match shards {
            0 | 1 => Protocol::OneShard,
            _ => Protocol::TwoPhase,
        }
    }
}

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every operation committed now.
    Committed,
    /// Nothing was written (a failed condition, a shard's failure before the decision,
    /// a refused key).
    Aborted,
    /// The answer did not say (in doubt, or committing): recovery settles it.
    Unknown,
    /// Answered from an earlier request with the same idempotency key.
    Replayed,
}

impl Ended {
    pub const ALL: [Ended; 4] = [
        Ended::Committed,
        Ended::Aborted,
        Ended::Unknown,
        Ended::Replayed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Ended::Committed => "committed",
            Ended::Aborted => "aborted",
            Ended::Unknown => "unknown",
            Ended::Replayed => "replayed",
        }
    }

    /// How `result` ended.
    pub fn of(result: &Result<TxnOutcome, TxnError>) -> Self {
        match result {
            Ok(o) if o.replayed => Ended::Replayed,
            Ok(_) => Ended::Committed,
            Err(TxnError::InDoubt { .. } | TxnError::Committing { .. }) => Ended::Unknown,
            Err(_) => Ended::Aborted,
        }
    }
}

/// The counters (one per protocol and ending).
#[derive(Debug, Default)]
pub struct Tally {
    counts: [[AtomicU64; 4]; 2],
}

impl Tally {
    pub fn count(&self, protocol: Protocol, ended: Ended) {
        self.counts[protocol as usize][ended as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// How many ended so under that protocol.
    pub fn get(&self, protocol: Protocol, ended: Ended) -> u64 {
        self.counts[protocol as usize][ended as usize].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::ShardId;

    #[test]
    fn each_protocol_and_ending_counts_apart() {
        let tally = Tally::default();
        tally.count(Protocol::TwoPhase, Ended::Committed);
        tally.count(Protocol::TwoPhase, Ended::Committed);
        tally.count(Protocol::OneShard, Ended::Aborted);
        assert_eq!(tally.get(Protocol::TwoPhase, Ended::Committed), 2);
        assert_eq!(tally.get(Protocol::OneShard, Ended::Aborted), 1);
        assert_eq!(tally.get(Protocol::OneShard, Ended::Committed), 0);
        assert_eq!(tally.get(Protocol::TwoPhase, Ended::Unknown), 0);
    }

    #[test]
    fn endings_are_read_from_the_result() {
        let replayed = TxnOutcome {
            replayed: true,
            ..TxnOutcome::default()
        };
        assert_eq!(Ended::of(&Ok(replayed)), Ended::Replayed);
        assert_eq!(Ended::of(&Ok(TxnOutcome::default())), Ended::Committed);
        let doubt = TxnError::InDoubt {
            txid: "t".into(),
            reason: "r".into(),
            bound_secs: 1,
            shard: ShardId(1),
        };
        assert_eq!(Ended::of(&Err(doubt)), Ended::Unknown);
        let refused = TxnError::PartlyReplayed { shard: ShardId(1) };
        assert_eq!(Ended::of(&Err(refused)), Ended::Aborted);
        assert_eq!(Protocol::for_shards(1), Protocol::OneShard);
        assert_eq!(Protocol::for_shards(3), Protocol::TwoPhase);
    }
}
