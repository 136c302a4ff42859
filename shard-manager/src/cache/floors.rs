//! Version floors kept in the gateway's own memory, where Redis eviction cannot reach.
//!
//! A floor stops a slow reader (one that read a record before a write, or from a replica
//! that had not replayed it) from installing the older version after the writer's. In
//! Redis a floor is one more key that eviction (`allkeys-lru`, or memory pressure of any
//! kind) may drop, so each gateway also keeps the floors of the writes it took here, for
//! as long as such a reader can exist (`window`): its own readers never depend on Redis
//! keeping them. (Another gateway's readers have only the Redis floor: see the README's
//! cache section.) The memory is bounded: past `cap` entries the oldest goes early, and
//! raises its shard's fence to its write's position instead, so no reader that might be
//! stale installs on that shard.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::fence::{Fence, Fences};
use crate::routing::ShardId;
use crate::wal::Lsn;

/// The floor of one record: the newest version a writer installed, or unknown (a write
/// whose outcome is not known: no reader may install until a writer does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Floor {
    Version(i64),
    Unknown,
}

#[derive(Debug)]
struct Entry {
    floor: Floor,
    shard: ShardId,
    /// The write's WAL position (for a fence if the entry goes early).
    at: Lsn,
    written: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    floors: HashMap<u128, Entry>,
    /// (when, record) in write order, for expiry and the cap; stale pairs are skipped.
    order: VecDeque<(Instant, u128)>,
}

/// Every recent write's floor, by record (a 128-bit hash of table, key and id).
#[derive(Debug)]
pub struct LocalFloors {
    inner: Mutex<Inner>,
    window: Duration,
    cap: usize,
}

impl LocalFloors {
    pub fn new(window: Duration, cap: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            window,
            cap: cap.max(1),
        }
    }

    /// A writer's floor for `record` (before it touches Redis).
    pub fn raise(&self, record: u128, shard: ShardId, floor: Floor, at: Lsn, fences: &Fences) {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let next = match (inner.floors.get(&record).map(|e| e.floor), floor) {
            (Some(Floor::Version(old)), Floor::Version(new)) => Floor::Version(old.max(new)),
            (_, new) => new,
        };
        inner.floors.insert(
            record,
            Entry {
                floor: next,
                shard,
                at,
                written: now,
            },
        );
        inner.order.push_back((now, record));
        self.trim(&mut inner, now, fences);
    }

    /// Whether a reader may install `version` of `record`.
    pub fn allows(&self, record: u128, version: i64) -> bool {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match inner.floors.get(&record) {
            None => true,
            Some(e) if e.written.elapsed() > self.window => true,
            Some(e) => matches!(e.floor, Floor::Version(v) if version >= v),
        }
    }

    /// Drops expired floors, and the oldest past the cap (fencing their shards).
    fn trim(&self, inner: &mut Inner, now: Instant, fences: &Fences) {
        while let Some(&(when, record)) = inner.order.front() {
            let expired = now.duration_since(when) > self.window;
            if !expired && inner.floors.len() <= self.cap {
                break;
            }
            inner.order.pop_front();
            // Only the record's newest write removes it (older pairs are stale).
            let current = inner.floors.get(&record).is_some_and(|e| e.written == when);
            if !current {
                continue;
            }
            if let Some(e) = inner.floors.remove(&record) {
                if !expired {
                    let fence = match e.floor {
                        Floor::Version(_) => Fence::At(e.at),
                        Floor::Unknown => Fence::Pending(now),
                    };
                    fences.raise(e.shard, fence);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: ShardId = ShardId(0);

    #[test]
    fn a_floor_refuses_older_versions_and_unknown_refuses_all() {
        let (floors, fences) = (
            LocalFloors::new(Duration::from_secs(60), 10),
            Fences::default(),
        );
        assert!(floors.allows(1, 1), "no floor: anything goes");
        floors.raise(1, S, Floor::Version(5), Lsn(10), &fences);
        assert!(!floors.allows(1, 4));
        assert!(floors.allows(1, 5));
        floors.raise(1, S, Floor::Version(3), Lsn(11), &fences);
        assert!(!floors.allows(1, 4), "a floor never goes down");
        floors.raise(2, S, Floor::Unknown, Lsn(12), &fences);
        assert!(!floors.allows(2, i64::MAX));
        floors.raise(2, S, Floor::Version(9), Lsn(13), &fences);
        assert!(
            floors.allows(2, 9),
            "a writer after the unknown one sets it"
        );
    }

    #[test]
    fn floors_expire_after_the_window() {
        let (floors, fences) = (
            LocalFloors::new(Duration::from_millis(20), 10),
            Fences::default(),
        );
        floors.raise(1, S, Floor::Version(5), Lsn(10), &fences);
        assert!(!floors.allows(1, 4));
        std::thread::sleep(Duration::from_millis(30));
        assert!(floors.allows(1, 4));
        assert!(fences.allows(S, Lsn(0), |_| None), "expiry raises no fence");
    }

    #[test]
    fn past_the_cap_the_oldest_goes_and_fences_its_shard() {
        let (floors, fences) = (
            LocalFloors::new(Duration::from_secs(60), 2),
            Fences::default(),
        );
        floors.raise(1, S, Floor::Version(1), Lsn(100), &fences);
        floors.raise(2, S, Floor::Version(1), Lsn(200), &fences);
        assert!(fences.allows(S, Lsn(0), |_| None));
        floors.raise(3, ShardId(1), Floor::Version(1), Lsn(5), &fences);
        assert!(floors.allows(1, 0), "record 1's floor went");
        assert!(!floors.allows(2, 0), "record 2's stays");
        assert!(
            !fences.allows(S, Lsn(99), |_| None),
            "shard 0 fenced at record 1's write"
        );
        assert!(fences.allows(S, Lsn(100), |_| None));
    }
}
