//! Replaying captured changes: the protocol moves and imports share.
//!
//! While a job copies live data, a trigger in every writer's own transaction logs
//! which rows changed (a sequence number and the row's identity, never its values) in
//! a log beside the source. A replay batch reads the oldest entries, installs each
//! row's *current* state on the destination (or removes it, if the row is gone), and
//! only then forgets those entries by their sequence numbers. So the order of entries
//! does not matter, and a replay interrupted anywhere is simply done again.
//!
//! The logs differ in where they live: a move's is the shards' `shardgate_move_log`,
//! filled by the `records` triggers of the `slot_moves` migrations for the slots in
//! `shardgate_moving`; an import's is `shardgate_import.log` on the foreign source,
//! filled by a trigger the import installs on the source table. Each implements
//! [`ChangeLog`]; the loops over it are here.

use std::future::Future;

use super::{Job, JobError, JobKind, Store};

/// A job's change log, and how to replay it on the destination.
pub trait ChangeLog {
    type Error: From<JobError>;

    /// Replays up to `limit` logged changes and forgets them; how many entries it
    /// applied (0: the log was empty).
    fn replay(&mut self, limit: i64) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// How many changes are logged and not yet replayed.
    fn behind(&mut self) -> impl Future<Output = Result<i64, Self::Error>> + Send;
}

/// When catching up stops.
#[derive(Debug, Clone, Copy)]
pub struct CatchUp {
    /// Entries per replay batch.
    pub batch: i64,
    /// Few enough logged changes to replay under the fence.
    pub fence_backlog: i64,
    /// Passes before giving up: the source changes faster than the replay.
    pub max_passes: usize,
}

/// Replays batches until at most `rule.fence_backlog` changes are logged, recording
/// each pass (`replayed`) and showing it to `progress`. False: still further behind
/// after `rule.max_passes` passes.
pub async fn catch_up<K: JobKind, L: ChangeLog>(
    store: &Store<'_, K>,
    id: i64,
    log: &mut L,
    rule: CatchUp,
    progress: &mut (dyn FnMut(&Job<K>) + Send),
) -> Result<bool, L::Error> {
    for _ in 0..rule.max_passes {
        let applied = log.replay(rule.batch).await?;
        let behind = log.behind().await?;
        store.replayed(id, applied as i64, behind).await?;
        progress(&store.get(id).await?);
        if behind <= rule.fence_backlog {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Replays until the log is empty (under a fence, where no writer adds to it); how
/// many entries it applied.
pub async fn drain<L: ChangeLog>(log: &mut L, batch: i64) -> Result<u64, L::Error> {
    let mut applied = 0;
    loop {
        match log.replay(batch).await? {
            0 => return Ok(applied),
            n => applied += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log in memory: entries replayed in batches, writers adding none.
    struct Memory {
        logged: u64,
        batches: Vec<u64>,
    }

    impl ChangeLog for Memory {
        type Error = JobError;

        async fn replay(&mut self, limit: i64) -> Result<u64, JobError> {
            let n = self.logged.min(limit as u64);
            self.logged -= n;
            self.batches.push(n);
            Ok(n)
        }

        async fn behind(&mut self) -> Result<i64, JobError> {
            Ok(self.logged as i64)
        }
    }

    #[tokio::test]
    async fn drain_replays_batches_until_one_finds_the_log_empty() {
        let mut log = Memory {
            logged: 12_345,
            batches: Vec::new(),
        };
        assert_eq!(drain(&mut log, 5000).await.unwrap(), 12_345);
        assert_eq!(log.batches, [5000, 5000, 2345, 0]);
        assert_eq!(log.behind().await.unwrap(), 0);
    }
}
