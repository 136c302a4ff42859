//! When an import run waits for a shard instead of stopping: which failures are worth
//! another try, and how many tries in a row without progress a run allows. Pure.
//!
//! A shard that stopped answering (its primary killed, restarting, or replaced by a
//! promoted replica) is what a failover looks like from the import: the run waits,
//! reads the map again and opens the primaries it names then, and goes on from the
//! import's stored state (the copy's checkpoint, the unforgotten log entries), as the
//! mover does ([`crate::moves::MoveError::retry_after`]). Every shard write is an
//! upsert of the row's current data, so a page or a replay batch written again over
//! its first, possibly committed, attempt changes nothing.

use std::time::Duration;

use super::{Import, ImportError, Phase};

/// Tries in a row, with no progress between them, before a run stops and says why
/// (about half a minute: the first retry waits a second).
pub const SHARD_PATIENCE: u32 = 30;

impl ImportError {
    /// How long to wait before trying again from the stored state, or None: not worth
    /// another try. Only a shard that did not answer is waited for (a lost connection,
    /// a restarting or promoted server); the source database, a refusal, a failed
    /// verification or the bookkeeping end the run as before.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ImportError::Shard(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// Where an import stands, as far as progress goes: a try that moved it forward
/// restores the run's patience.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub phase: Phase,
    pub rows_copied: i64,
    pub rows_replayed: i64,
}

impl Mark {
    pub fn of(im: &Import) -> Self {
        Self {
            phase: im.phase,
            rows_copied: im.rows_copied,
            rows_replayed: im.rows_replayed,
        }
    }
}

/// Counts failed tries since the import last moved forward.
#[derive(Debug)]
pub struct Patience {
    limit: u32,
    failures: u32,
    last: Option<Mark>,
}

impl Patience {
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            failures: 0,
            last: None,
        }
    }

    /// A try failed with the import at `now`: true while another try is allowed.
    pub fn another_try(&mut self, now: Mark) -> bool {
        if self.last != Some(now) {
            self.failures = 0;
            self.last = Some(now);
        }
        self.failures += 1;
        self.failures <= self.limit
    }

    /// Failed tries since the import last moved forward.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::MapError;
    use crate::moves::MoveError;
    use shard_manager::routing::ShardId;

    fn shard(transient: bool) -> ImportError {
        ImportError::Shard(MoveError::Shard {
            shard: ShardId(0),
            server: "127.0.0.1:1".into(),
            doing: "writing imported records",
            reason: "connection closed".into(),
            transient,
        })
    }

    fn at(rows_copied: i64) -> Mark {
        Mark {
            phase: Phase::Copying,
            rows_copied,
            rows_replayed: 0,
        }
    }

    #[test]
    fn a_shard_that_did_not_answer_is_tried_again_after_a_second() {
        assert_eq!(shard(true).retry_after(), Some(Duration::from_secs(1)));
    }

    #[test]
    fn refusals_the_source_and_failed_checks_end_the_run() {
        assert_eq!(shard(false).retry_after(), None);
        assert_eq!(ImportError::Refused("no".into()).retry_after(), None);
        assert_eq!(
            ImportError::Verify("1 row differs".into()).retry_after(),
            None
        );
        let source = ImportError::Source {
            source_db: "postgres://app@db:5432/shop".into(),
            doing: "reading a page",
            reason: "connection closed".into(),
        };
        assert_eq!(source.retry_after(), None);
        assert_eq!(
            ImportError::Map(MapError::NotInitialised).retry_after(),
            None
        );
    }

    #[test]
    fn patience_runs_out_after_the_limit_of_tries_without_progress() {
        let mut p = Patience::new(3);
        assert!(p.another_try(at(1000)));
        assert!(p.another_try(at(1000)));
        assert!(p.another_try(at(1000)));
        assert!(!p.another_try(at(1000)), "a fourth try with nothing done");
        assert_eq!(p.failures(), 4);
    }

    #[test]
    fn progress_between_failures_restores_patience() {
        let mut p = Patience::new(2);
        assert!(p.another_try(at(1000)) && p.another_try(at(1000)));
        assert!(p.another_try(at(1250)), "a page was copied meanwhile");
        assert_eq!(p.failures(), 1);
        let syncing = Mark {
            phase: Phase::Syncing,
            ..at(1250)
        };
        assert!(p.another_try(syncing) && p.another_try(syncing));
        assert!(!p.another_try(syncing));
    }
}
