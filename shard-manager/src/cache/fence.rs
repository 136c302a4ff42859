//! Fences: what a reader must have seen to install into a shard's new key epoch.
//!
//! When a writer cannot update Redis, the shard moves to a new key epoch (`epochs`), so
//! the entries it could not fix become unreachable. But the new epoch starts with no
//! version floors either: a reader holding a version from before that write (a replica
//! that had not replayed it yet) could install it there. So every gateway adopts a new
//! epoch behind a fence at a primary position past that write (the writer's gateway at
//! the write's, the others at the one read with the epoch), and a reader installs only
//! what a server had read at or past the fence. When the write's position is not known (its
//! connection was lost after sending), the fence waits for the first position of the
//! primary observed after the failure, which is past that write whatever it was.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::routing::ShardId;
use crate::wal::Lsn;

/// One shard's fence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fence {
    /// Installs need a read at or past this position.
    At(Lsn),
    /// A write of unknown position failed at this instant: no install until a primary
    /// position observed after it is known.
    Pending(Instant),
}

/// Every shard's fence; none until an epoch is abandoned.
#[derive(Debug, Default)]
pub struct Fences(Mutex<HashMap<ShardId, Fence>>);

impl Fences {
    /// Raises `shard`'s fence (it never goes down).
    pub fn raise(&self, shard: ShardId, fence: Fence) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let next = match (all.get(&shard).copied(), fence) {
            (None, new) => new,
            (Some(Fence::At(old)), Fence::At(new)) => Fence::At(old.max(new)),
            // A pending fence resolves to a position observed later, which is past any
            // position fenced before it.
            (Some(Fence::At(_)), pending @ Fence::Pending(_)) => pending,
            (Some(Fence::Pending(old)), Fence::Pending(new)) => Fence::Pending(old.max(new)),
            (Some(pending @ Fence::Pending(_)), Fence::At(_)) => pending,
        };
        all.insert(shard, next);
    }

    /// Whether a read of `shard` that had seen `seen_at` may be installed.
    /// `observed_after(t)`: the primary's WAL position if one was observed after `t`.
    pub fn allows(
        &self,
        shard: ShardId,
        seen_at: Lsn,
        observed_after: impl FnOnce(Instant) -> Option<Lsn>,
    ) -> bool {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match all.get(&shard).copied() {
            None => true,
            Some(Fence::At(at)) => seen_at >= at,
            Some(Fence::Pending(since)) => match observed_after(since) {
                Some(at) => {
                    all.insert(shard, Fence::At(at));
                    seen_at >= at
                }
                None => false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: ShardId = ShardId(1);

    #[test]
    fn no_fence_allows_everything_and_a_fence_needs_a_read_past_it() {
        let f = Fences::default();
        assert!(f.allows(S, Lsn(0), |_| None));
        f.raise(S, Fence::At(Lsn(100)));
        assert!(!f.allows(S, Lsn(99), |_| None));
        assert!(f.allows(S, Lsn(100), |_| None));
        assert!(
            f.allows(ShardId(2), Lsn(0), |_| None),
            "other shards unaffected"
        );
        f.raise(S, Fence::At(Lsn(50)));
        assert!(!f.allows(S, Lsn(99), |_| None), "fences never go down");
    }

    #[test]
    fn a_pending_fence_refuses_until_a_later_primary_position_resolves_it() {
        let f = Fences::default();
        let t0 = Instant::now();
        f.raise(S, Fence::At(Lsn(100)));
        f.raise(S, Fence::Pending(t0));
        assert!(!f.allows(S, Lsn(1_000), |_| None), "nothing observed yet");
        let asked = std::cell::Cell::new(None);
        assert!(!f.allows(S, Lsn(150), |since| {
            asked.set(Some(since));
            Some(Lsn(200))
        }));
        assert_eq!(asked.get(), Some(t0));
        assert!(f.allows(S, Lsn(200), |_| panic!("resolved already")));
        f.raise(S, Fence::Pending(t0 + Duration::from_millis(5)));
        f.raise(S, Fence::At(Lsn(10_000)));
        assert!(!f.allows(S, Lsn(10_000), |_| None), "still pending");
    }
}
