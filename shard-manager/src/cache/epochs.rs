//! Shared cache epochs: one per shard, stored on the shard's primary (migration
//! `cache_epoch`), so that every gateway uses the same keys and every gateway abandons
//! them together.
//!
//! A writer that committed but could not update Redis raises its shard's epoch on the
//! primary before acknowledging, and uses the new keys at once. Every other gateway
//! reads the epoch with each health check (every `replication.check_interval_ms`) and,
//! when it moved, raises that shard's fence to the WAL position read in the same
//! statement (past the write) and switches keys. Until a gateway knows a shard's epoch,
//! its reads of that shard bypass the cache.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use futures_util::future::BoxFuture;

use crate::routing::ShardId;

/// Reads (`false`) or raises (`true`) a shard's epoch on its primary; None when the
/// primary could not be reached.
pub type EpochStore = Box<dyn Fn(ShardId, bool) -> BoxFuture<'static, Option<u64>> + Send + Sync>;

/// The epochs this gateway knows, and how to reach the stored ones.
#[derive(Default)]
pub struct Epochs {
    known: Mutex<HashMap<ShardId, u64>>,
    store: OnceLock<EpochStore>,
}

impl Epochs {
    /// Installs how to reach the shards (done once, by the cluster that owns them).
    pub fn connect(&self, store: EpochStore) {
        let _ = self.store.set(store);
    }

    pub fn get(&self, shard: ShardId) -> Option<u64> {
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&shard)
            .copied()
    }

    /// Adopts `epoch` if it is newer. Returns true when it moved on from a known one
    /// (another gateway abandoned the old keys: the caller raises the fence first).
    pub fn adopt(&self, shard: ShardId, epoch: u64) -> bool {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        match known.get(&shard).copied() {
            Some(old) if old >= epoch => false,
            Some(_) => {
                known.insert(shard, epoch);
                true
            }
            None => {
                known.insert(shard, epoch);
                false
            }
        }
    }

    /// Reads the stored epoch when this gateway does not know it yet.
    pub async fn fetch(&self, shard: ShardId) -> Option<u64> {
        if let Some(e) = self.get(shard) {
            return Some(e);
        }
        let stored = (self.store.get()?)(shard, false).await?;
        self.adopt(shard, stored);
        self.get(shard)
    }

    /// Moves past the current epoch: locally at once, then on the shard (so every
    /// gateway follows). Returns false when the shard could not be told.
    pub async fn bump(&self, shard: ShardId) -> bool {
        {
            let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            let next = known.get(&shard).map_or(0, |e| e + 1);
            known.insert(shard, next);
        }
        let Some(store) = self.store.get() else {
            return false;
        };
        match store(shard, true).await {
            Some(stored) => {
                self.adopt(shard, stored);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_only_move_forward_and_say_when_they_moved() {
        let e = Epochs::default();
        assert_eq!(e.get(ShardId(0)), None);
        assert!(!e.adopt(ShardId(0), 3), "first sight is not a move");
        assert!(!e.adopt(ShardId(0), 2), "older: ignored");
        assert_eq!(e.get(ShardId(0)), Some(3));
        assert!(e.adopt(ShardId(0), 4));
        assert_eq!(e.get(ShardId(1)), None, "per shard");
    }

    #[tokio::test]
    async fn a_bump_moves_locally_even_when_the_shard_cannot_be_told() {
        let e = Epochs::default();
        e.adopt(ShardId(0), 7);
        assert!(!e.bump(ShardId(0)).await, "no store: not told");
        assert_eq!(e.get(ShardId(0)), Some(8));
        e.connect(Box::new(|_, bump| {
            Box::pin(async move { Some(if bump { 20 } else { 9 }) })
        }));
        assert!(e.bump(ShardId(0)).await);
        assert_eq!(
            e.get(ShardId(0)),
            Some(20),
            "the stored epoch wins when newer"
        );
        assert_eq!(e.fetch(ShardId(1)).await, Some(9));
    }
}
