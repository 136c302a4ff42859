//! Placement: key → slot → shard, a pure function of the key and the slot map.
//!
//! `slot = xxh3_64(key bytes, seed 0) % slot_count`. XXH3-64 is a published,
//! platform-independent hash (the xxHash specification), so placement never changes
//! across machines, compilers or releases. Changing the hash, the seed or the slot
//! count would move data: all three are fixed for the life of a cluster.

use crate::config::RoutingSettings;
use crate::key::{ShardId, ShardKey, Slot};

/// The routing table. Cheap to clone and to query; no I/O.
#[derive(Debug, Clone)]
pub struct Router {
    slot_count: u32,
    /// `slot_owner[slot]` is the shard that owns that slot.
    slot_owner: Vec<ShardId>,
}

/// Where one key lives, with the intermediate values for people who want to see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Placement {
    pub hash: u64,
    pub slot: Slot,
    pub shard: ShardId,
}

/// The stable 64-bit hash of a key's bytes.
pub fn key_hash(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

impl Router {
    /// Builds the slot map from validated settings: explicit ranges where configured,
    /// otherwise even contiguous ranges in shard order.
    pub fn new(routing: &RoutingSettings, slot_ranges: &[Vec<(u32, u32)>]) -> Self {
        let slot_count = routing.slot_count;
        let shards = slot_ranges.len().max(1) as u32;
        let mut slot_owner = vec![ShardId(0); slot_count as usize];
        if slot_ranges.iter().all(|r| r.is_empty()) {
            for (slot, owner) in slot_owner.iter_mut().enumerate() {
                *owner = ShardId(even_owner(slot as u32, slot_count, shards));
            }
        } else {
            for (shard, ranges) in slot_ranges.iter().enumerate() {
                for &(start, end) in ranges {
                    for slot in start..=end {
                        slot_owner[slot as usize] = ShardId(shard as u32);
                    }
                }
            }
        }
        Self {
            slot_count,
            slot_owner,
        }
    }

    pub fn slot_count(&self) -> u32 {
        self.slot_count
    }

    pub fn slot_for(&self, key: &ShardKey) -> Slot {
        Slot((key_hash(key.as_bytes()) % u64::from(self.slot_count)) as u32)
    }

    pub fn shard_for(&self, key: &ShardKey) -> ShardId {
        self.locate(key).shard
    }

    pub fn locate(&self, key: &ShardKey) -> Placement {
        let hash = key_hash(key.as_bytes());
        let slot = Slot((hash % u64::from(self.slot_count)) as u32);
        Placement {
            hash,
            slot,
            shard: self.slot_owner[slot.0 as usize],
        }
    }

    /// The slot ranges each shard owns, merged, for display.
    pub fn ranges_of(&self, shard: ShardId) -> Vec<(u32, u32)> {
        let mut out: Vec<(u32, u32)> = Vec::new();
        for (slot, owner) in self.slot_owner.iter().enumerate() {
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
}

/// Even contiguous ranges: shard `i` owns `[i*count/shards, (i+1)*count/shards)`.
fn even_owner(slot: u32, slot_count: u32, shards: u32) -> u32 {
    ((u64::from(slot) * u64::from(shards)) / u64::from(slot_count)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Strategy;

    fn router(shards: usize) -> Router {
        let routing = RoutingSettings {
            strategy: Strategy::Slots,
            slot_count: 1024,
        };
        Router::new(&routing, &vec![Vec::new(); shards])
    }

    fn key(s: &str) -> ShardKey {
        ShardKey::parse(s).unwrap()
    }

    /// Fixed vectors: if any of these change, data written by an earlier release would
    /// be looked for on the wrong shard. Never update them to make a test pass.
    #[test]
    fn hash_is_xxh3_64_fixed_vectors() {
        assert_eq!(key_hash(b""), 0x2d06800538d394c2);
        assert_eq!(key_hash(b"a"), 0xe6c632b61e964e1f);
        assert_eq!(key_hash(b"user_123"), 0x6b32cffc057a0d5d);
        let placed: Vec<(u32, u32)> = ["user_123", "@alice:matrix.org", "42", "order-9", "user_2"]
            .iter()
            .map(|k| {
                let p = router(3).locate(&key(k));
                (p.slot.0, p.shard.0)
            })
            .collect();
        assert_eq!(placed, FIXED_PLACEMENTS);
    }

    /// (slot, shard) for the keys above with 1024 slots over 3 shards, computed with an
    /// independent XXH3 implementation (Python `xxhash.xxh3_64_intdigest`).
    const FIXED_PLACEMENTS: [(u32, u32); 5] = [(349, 1), (259, 0), (401, 1), (297, 0), (938, 2)];

    #[test]
    fn even_ranges_cover_all_slots_in_order() {
        let r = router(3);
        assert_eq!(r.ranges_of(ShardId(0)), vec![(0, 341)]);
        assert_eq!(r.ranges_of(ShardId(1)), vec![(342, 682)]);
        assert_eq!(r.ranges_of(ShardId(2)), vec![(683, 1023)]);
    }

    #[test]
    fn explicit_ranges_are_honoured() {
        let routing = RoutingSettings {
            strategy: Strategy::Slots,
            slot_count: 8,
        };
        let r = Router::new(&routing, &[vec![(0, 1), (6, 7)], vec![(2, 5)]]);
        assert_eq!(r.ranges_of(ShardId(0)), vec![(0, 1), (6, 7)]);
        assert_eq!(r.ranges_of(ShardId(1)), vec![(2, 5)]);
    }

    #[test]
    fn placement_is_deterministic_and_spread() {
        let r = router(3);
        let mut counts = [0u32; 3];
        for i in 0..30_000 {
            let k = key(&format!("user_{i}"));
            let a = r.shard_for(&k);
            assert_eq!(a, r.shard_for(&k));
            counts[a.index()] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "uneven spread: {counts:?}");
        }
    }
}
