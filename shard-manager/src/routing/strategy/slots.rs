//! `slots` (the default): key → slot → shard, as Redis Cluster, Citus and Vitess do it.
//!
//! `slot = xxh3_64(key) % slot_count`, and a slot map gives every slot to one shard.
//! Keys never move on their own: only whole slots are reassigned, so the slot is the
//! unit of data movement.
//!
//! Guarantees (asserted by `tests/strategies/slots.rs`):
//! - Deterministic: the hash, its seed and the slot count are fixed, and the map is
//!   configuration.
//! - Balance: an even map gives each of N shards ⌊S/N⌋ or ⌈S/N⌉ of the S slots, so
//!   a shard's expected share of uniformly spread keys is at most ⌈S/N⌉/(S/N) of the
//!   mean (1.002 for S = 1024, N = 3). Over 100,000 random keys, max/mean load ≤ 1.05
//!   for S = 1024 and N ≤ 10.
//! - Movement: [`SlotMap::with_added_shard`] moves ⌊S/(N+1)⌋ slots, each old shard
//!   giving up about 1/(N+1) of its own, and nothing else: every key that moves, moves
//!   to the new shard, and the moved fraction of keys is within 0.01 of 1/(N+1) over
//!   100,000 keys. From an even map, every shard then owns ⌊S/(N+1)⌋ or ⌈S/(N+1)⌉ slots.

use super::{KeyInput, Sharding};
use crate::routing::{ShardId, Slot};

/// Which shard owns each slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotMap {
    /// `owner[slot]` is the shard that owns that slot.
    owner: Vec<ShardId>,
    shards: u32,
}

/// One slot changing hands, as a rebalance must copy it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotMove {
    pub slot: Slot,
    pub from: ShardId,
    pub to: ShardId,
}

impl SlotMap {
    /// Even contiguous ranges in shard order: shard `i` owns
    /// `[i·S/N, (i+1)·S/N)`, rounded down.
    pub fn even(slot_count: u32, shards: u32) -> Self {
        let shards = shards.max(1);
        let owner = (0..slot_count)
            .map(|slot| {
                ShardId(((u64::from(slot) * u64::from(shards)) / u64::from(slot_count)) as u32)
            })
            .collect();
        Self { owner, shards }
    }

    /// Explicit inclusive ranges per shard (`ranges[i]` belongs to shard `i`), as
    /// `ClusterSettings::validate` returns them; all empty means [`SlotMap::even`].
    /// Expects validated ranges: slots past `slot_count` are ignored and a slot no range
    /// names stays with shard 0.
    pub fn from_ranges(slot_count: u32, ranges: &[Vec<(u32, u32)>]) -> Self {
        let shards = ranges.len().max(1) as u32;
        if ranges.iter().all(Vec::is_empty) {
            return Self::even(slot_count, shards);
        }
        let mut owner = vec![ShardId(0); slot_count as usize];
        for (shard, list) in ranges.iter().enumerate() {
            for &(start, end) in list {
                for slot in start..=end.min(slot_count.saturating_sub(1)) {
                    owner[slot as usize] = ShardId(shard as u32);
                }
            }
        }
        Self { owner, shards }
    }

    pub fn slot_count(&self) -> u32 {
        self.owner.len() as u32
    }

    /// `hash % slot_count`.
    pub fn slot_of(&self, hash: u64) -> Slot {
        Slot((hash % self.owner.len() as u64) as u32)
    }

    /// The shard that owns `slot`; slots past the map wrap, so this is total.
    pub fn owner(&self, slot: Slot) -> ShardId {
        self.owner[slot.0 as usize % self.owner.len()]
    }

    /// How many slots `shard` owns.
    pub fn owned(&self, shard: ShardId) -> u32 {
        self.owner.iter().filter(|&&o| o == shard).count() as u32
    }

    /// The slot ranges `shard` owns, merged and inclusive, in slot order.
    pub fn ranges_of(&self, shard: ShardId) -> Vec<(u32, u32)> {
        let mut out: Vec<(u32, u32)> = Vec::new();
        for (slot, owner) in self.owner.iter().enumerate() {
            if *owner != shard {
                continue;
            }
            let slot = slot as u32;
            match out.last_mut() {
                Some((_, end)) if *end + 1 == slot => *end = slot,
                _ => out.push((slot, slot)),
            }
        }
        out
    }

    /// The slots that change owner between `self` and `after` (same slot count), in slot
    /// order: what a rebalance from one map to the other has to copy.
    pub fn moves_to(&self, after: &SlotMap) -> Vec<SlotMove> {
        self.owner
            .iter()
            .zip(&after.owner)
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(slot, (&from, &to))| SlotMove {
                slot: Slot(slot as u32),
                from,
                to,
            })
            .collect()
    }
}

impl Sharding for SlotMap {
    fn shard_count(&self) -> u32 {
        self.shards
    }

    fn shard_of(&self, key: &KeyInput<'_>) -> ShardId {
        self.owner(self.slot_of(key.hash()))
    }

    /// The minimal rebalance onto a new shard: each old shard gives up
    /// ⌊owned/(N+1)⌋ of its slots, its highest-numbered ones, and the shards with the
    /// largest remainders one more each, until the new shard holds ⌊S/(N+1)⌋. No slot
    /// moves between old shards.
    fn with_added_shard(&self) -> Self {
        let parts = u64::from(self.shards) + 1;
        let new = ShardId(self.shards);
        let owned: Vec<u64> = (0..self.shards)
            .map(|s| u64::from(self.owned(ShardId(s))))
            .collect();
        let mut give: Vec<u64> = owned.iter().map(|o| o / parts).collect();
        let target = self.owner.len() as u64 / parts;
        let short = target - give.iter().sum::<u64>();
        // Largest remainder first, then the larger shard, then the lower id.
        let mut order: Vec<usize> = (0..owned.len()).collect();
        order.sort_by_key(|&s| (std::cmp::Reverse((owned[s] % parts, owned[s])), s));
        for &s in order.iter().take(short as usize) {
            give[s] += 1;
        }
        let mut owner = self.owner.clone();
        for slot in owner.iter_mut().rev() {
            let left = &mut give[slot.index()];
            if *left > 0 {
                *left -= 1;
                *slot = new;
            }
        }
        Self {
            owner,
            shards: self.shards + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_a_fourth_shard_takes_a_quarter_from_the_tails() {
        let before = SlotMap::even(1024, 3);
        let after = before.with_added_shard();
        assert_eq!(after.shard_count(), 4);
        assert_eq!(after.ranges_of(ShardId(0)), vec![(0, 255)]);
        assert_eq!(after.ranges_of(ShardId(1)), vec![(342, 597)]);
        assert_eq!(after.ranges_of(ShardId(2)), vec![(683, 938)]);
        assert_eq!(
            after.ranges_of(ShardId(3)),
            vec![(256, 341), (598, 682), (939, 1023)]
        );
        let moves = before.moves_to(&after);
        assert_eq!(moves.len(), 256);
        assert!(moves.iter().all(|m| m.to == ShardId(3)));
    }

    #[test]
    fn explicit_ranges_keep_their_shape() {
        let map = SlotMap::from_ranges(8, &[vec![(0, 1), (6, 7)], vec![(2, 5)]]);
        assert_eq!(map.ranges_of(ShardId(0)), vec![(0, 1), (6, 7)]);
        assert_eq!(map.owned(ShardId(1)), 4);
        let after = map.with_added_shard();
        // 8 slots over 3 shards: the new shard takes ⌊8/3⌋ = 2, one from each.
        assert_eq!(after.ranges_of(ShardId(2)), vec![(5, 5), (7, 7)]);
    }
}
