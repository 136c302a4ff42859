//! `slots`: the bounds stated in `shard_manager::routing::strategy::slots`.

use proptest::prelude::*;
use shard_manager::routing::strategy::{Sharding, SlotMap};
use shard_manager::ShardId;

use crate::common::*;

const SLOTS: u32 = 1024;

#[test]
fn placement_is_deterministic() {
    let keys = text_keys();
    assert_deterministic(&SlotMap::even(SLOTS, 3), &SlotMap::even(SLOTS, 3), keys);
}

/// max/mean ≤ 1.05 over 100,000 keys for S = 1024, N ≤ 10.
#[test]
fn even_maps_balance_keys_within_five_percent() {
    let keys = text_keys();
    for n in SHARD_COUNTS {
        let map = SlotMap::even(SLOTS, n);
        let ratio = max_over_mean(&loads(&map, keys));
        println!("slots  N={n:>2}: max/mean {ratio:.4} (bound 1.05)");
        assert!(ratio <= 1.05, "N={n}: max/mean {ratio}");
    }
}

/// Moved fraction within 0.01 of 1/(N+1), every moved key to the new shard.
#[test]
fn adding_a_shard_moves_one_in_n_plus_one_keys_to_the_new_shard() {
    let keys = text_keys();
    for n in 1..=10 {
        let before = SlotMap::even(SLOTS, n);
        let after = before.with_added_shard();
        let m = movement(&before, &after, keys);
        let expected = 1.0 / f64::from(n + 1);
        println!(
            "slots  N={n:>2}->{}: moved {:.4} (expected {expected:.4} ± 0.01)",
            n + 1,
            m.moved
        );
        assert_eq!(m.between_old, 0, "N={n}: keys moved between old shards");
        assert!(
            (m.moved - expected).abs() <= 0.01,
            "N={n}: moved {}",
            m.moved
        );
        assert_eq!(before.moves_to(&after).len() as u32, SLOTS / (n + 1));
    }
}

proptest! {
    /// From an even map, the new shard takes ⌊S/(N+1)⌋ slots, only from old shards, and
    /// every shard ends with ⌊S/(N+1)⌋ or ⌈S/(N+1)⌉ slots.
    #[test]
    fn added_shard_from_even_map_is_balanced_and_minimal(
        slot_count in 2u32..=4096,
        n in 1u32..=64,
    ) {
        prop_assume!(n < slot_count);
        let before = SlotMap::even(slot_count, n);
        let after = before.with_added_shard();
        let moves = before.moves_to(&after);
        prop_assert_eq!(moves.len() as u32, slot_count / (n + 1));
        prop_assert!(moves.iter().all(|m| m.to == ShardId(n)));
        let owned: Vec<u32> = (0..=n).map(|s| after.owned(ShardId(s))).collect();
        let (lo, hi) = (slot_count / (n + 1), slot_count.div_ceil(n + 1));
        prop_assert!(owned.iter().all(|&o| (lo..=hi).contains(&o)), "{:?}", owned);
    }

    /// From any map, each old shard gives up about 1/(N+1) of its own slots (at most one
    /// more than ⌊owned/(N+1)⌋), all to the new shard.
    #[test]
    fn added_shard_takes_a_proportional_share_of_any_map(
        owners in prop::collection::vec(0u32..6, 16..600),
    ) {
        let n = 6;
        let count = owners.len() as u32;
        let mut ranges = vec![Vec::new(); n as usize];
        for (slot, &o) in owners.iter().enumerate() {
            ranges[o as usize].push((slot as u32, slot as u32));
        }
        prop_assume!(ranges.iter().all(|r| !r.is_empty()));
        let before = SlotMap::from_ranges(count, &ranges);
        let after = before.with_added_shard();
        let moves = before.moves_to(&after);
        prop_assert_eq!(moves.len() as u32, count / (n + 1));
        prop_assert!(moves.iter().all(|m| m.to == ShardId(n)));
        for s in 0..n {
            let given = moves.iter().filter(|m| m.from == ShardId(s)).count() as u32;
            let owned = before.owned(ShardId(s));
            prop_assert!(given == owned / (n + 1) || given == owned / (n + 1) + 1);
        }
    }
}
