//! The one retry policy, for every kind of request: what is tried again after a failed
//! attempt, how (on what), and what never is. Every place that retries asks [`policy`]:
//! the cluster after a shard refused a slot (`cluster::operations`), a server after a
//! pooled connection turned out dead (`servers::server`, `servers::write`), the wire
//! client after stale statements or a taken idempotency key (`wire::statements`,
//! `wire::write::idempotent`), a transaction after a part's refusal (`cluster::txn::rerouted`:
//! the whole transaction, under a new id, once nothing of it stands). Each retry happens
//! at most once per attempt: a second failure is answered as it is; only the wait for a
//! primary tries again and again, within its bound, and only while nothing was sent.
//!
//! | cause | read | write | write with an Idempotency-Key |
//! |---|---|---|---|
//! | the shard refused the slot (SG001) | once, rerouted after a map reload | same (a transaction: the whole of it, after its prepared parts were rolled back) | same |
//! | connection lost before the send | once, on another connection | same | same |
//! | connection lost after the send | once, on another connection | never: it may have committed (503) | again with its key on the primary the map names, as for a primary that did not answer (a single write or delete under an HA manager for up to `failover.hold_ms`; a bulk group within `write_wait_ms`): the key's record makes it apply once |
//! | stale prepared statements (0A000, 26000) | once, prepared again | same (nothing ran) | same |
//! | another request with the key committed first (SG002) | — | — | once, to read that answer |
//! | the primary did not answer, nothing sent | again on the primary the map names, every 100 ms (at once when the map names another), for up to `failover.write_wait_ms`, or `failover.hold_ms` while the shard is handed over | same (a transaction: the whole of it, once nothing of it stands) | same |
//! | the primary is read-only (25006: drained for a switchover, demoted, or promoted but not yet writable; opens the shard's handover) | again on the primary the map names, every 100 ms (at once when the map names another), for up to `failover.hold_ms` (or `write_wait_ms`, if longer) | same (a transaction: the whole of it) | same |
//! | serialization failure, deadlock, lock timeout (40001, 40P01, 55P03) | never (409 concurrent-conflict, with its SQLSTATE) | same | same |
//! | a transaction's condition failed (SG005) | — | never: nothing was written (409) | same |
//! | a transaction's part failed after its commit was logged | — | never: recovery commits it (503 `transaction-committing`) | same |

/// Why an attempt failed, as far as retrying goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The shard refused the key's slot: nothing ran there.
    SlotRefused,
    /// The connection was found dead before the request's statements went out.
    LostBeforeSend,
    /// The connection was lost after the statements went out: they may have run.
    LostAfterSend,
    /// The connection's prepared statements were stale: nothing ran.
    StaleStatements,
    /// Another request with the same idempotency key committed first: rolled back.
    KeyTaken,
    /// The primary did not answer (refused, or lost before the send): nothing was
    /// written.
    PrimaryDown,
    /// The primary is read-only (demoted): nothing was written.
    ReadOnly,
    /// A serialization failure or deadlock: rolled back.
    Conflict,
    /// A transaction's `if_version` did not hold (SG005): every part rolled back.
    ConditionFailed,
    /// A transaction's part failed after the decision to commit was logged: it is
    /// committed, and the recovery applies it on that shard.
    AfterDecision,
}

/// What kind of work failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// A point read, a list, a fan-out's part, a check: sending it twice changes nothing.
    Read,
    /// A write (single, bulk group, delete, claim); `keyed` when it carries an
    /// Idempotency-Key, whose entry makes a second copy a replay.
    Write { keyed: bool },
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Answer the failure.
    Never,
    /// Reload the map, route the key again and try once more on its owner.
    RerouteOnce,
    /// Try once more on another connection (the failed one is dropped).
    OtherConnectionOnce,
    /// Prepare the statements again and try once more on the same connection.
    PrepareAgainOnce,
    /// Run once more on the same connection (the transaction was rolled back).
    AgainOnce,
    /// Try again on the shard's primary as the map names it, every 100 ms and at once
    /// when the map names another, until it takes the work or `failover.write_wait_ms`
    /// passes (`cluster::new_primary`).
    UntilAPrimaryTakes,
}

/// The policy (see the table in the module doc).
pub fn policy(cause: Cause, work: Work) -> Retry {
    match (cause, work) {
        (Cause::SlotRefused, _) => Retry::RerouteOnce,
        (Cause::LostBeforeSend, _) => Retry::OtherConnectionOnce,
        (Cause::LostAfterSend, Work::Read) => Retry::OtherConnectionOnce,
        // It may have committed: a second copy could apply twice (a version bumped
        // twice, a delete answered 404). With a key, its record answers a second copy
        // with the first one's answer if it did: sent again, it applies once.
        (Cause::LostAfterSend, Work::Write { keyed: true }) => Retry::UntilAPrimaryTakes,
        (Cause::LostAfterSend, Work::Write { keyed: false }) => Retry::Never,
        (Cause::StaleStatements, _) => Retry::PrepareAgainOnce,
        (Cause::KeyTaken, Work::Write { keyed: true }) => Retry::AgainOnce,
        (Cause::KeyTaken, _) => Retry::Never,
        // Nothing reached the server: the shard's next primary may take it.
        (Cause::PrimaryDown | Cause::ReadOnly, _) => Retry::UntilAPrimaryTakes,
        (Cause::Conflict, _) => Retry::Never,
        // The answer is the client's to act on: read, then send a new condition.
        (Cause::ConditionFailed, _) => Retry::Never,
        // Sending the part again could only find it committed: recovery finishes it.
        (Cause::AfterDecision, _) => Retry::Never,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: Work = Work::Read;
    const WRITE: Work = Work::Write { keyed: false };
    const KEYED: Work = Work::Write { keyed: true };

    /// One assertion per cell of the module doc's table.
    #[test]
    fn the_table_as_documented() {
        let cells = [
            (Cause::SlotRefused, [Retry::RerouteOnce; 3]),
            (Cause::LostBeforeSend, [Retry::OtherConnectionOnce; 3]),
            (
                Cause::LostAfterSend,
                [
                    Retry::OtherConnectionOnce,
                    Retry::Never,
                    Retry::UntilAPrimaryTakes,
                ],
            ),
            (Cause::StaleStatements, [Retry::PrepareAgainOnce; 3]),
            (
                Cause::KeyTaken,
                [Retry::Never, Retry::Never, Retry::AgainOnce],
            ),
            (Cause::PrimaryDown, [Retry::UntilAPrimaryTakes; 3]),
            (Cause::ReadOnly, [Retry::UntilAPrimaryTakes; 3]),
            (Cause::Conflict, [Retry::Never; 3]),
            (Cause::ConditionFailed, [Retry::Never; 3]),
            (Cause::AfterDecision, [Retry::Never; 3]),
        ];
        for (cause, [read, write, keyed]) in cells {
            assert_eq!(policy(cause, READ), read, "{cause:?} read");
            assert_eq!(policy(cause, WRITE), write, "{cause:?} write");
            assert_eq!(policy(cause, KEYED), keyed, "{cause:?} keyed write");
        }
    }

    #[test]
    fn a_transaction_is_retried_only_when_nothing_of_it_stands() {
        for work in [WRITE, KEYED] {
            assert_eq!(policy(Cause::SlotRefused, work), Retry::RerouteOnce);
            assert_eq!(policy(Cause::ConditionFailed, work), Retry::Never);
            assert_eq!(policy(Cause::AfterDecision, work), Retry::Never);
        }
    }

    #[test]
    fn only_a_keyed_write_is_sent_again_after_its_connection_was_lost() {
        assert_eq!(policy(Cause::LostAfterSend, WRITE), Retry::Never);
        assert_eq!(
            policy(Cause::LostAfterSend, KEYED),
            Retry::UntilAPrimaryTakes
        );
    }
}
