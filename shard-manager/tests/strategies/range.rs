//! `range`: the bounds stated in `shard_manager::routing::strategy::range`.

use proptest::prelude::*;
use shard_manager::routing::strategy::{Bound, KeyInput, KeyRange, RangeMap, Sharding};
use shard_manager::ShardId;

use crate::common::*;

/// N even ranges over all of `i64`, shard `i` owning range `i`.
fn even_numeric(n: u32) -> RangeMap {
    let edge = |k: u32| {
        let at = i128::from(i64::MIN) + (i128::from(k) << 64) / i128::from(n);
        (k > 0 && k < n).then_some(Bound::Number(at as i64))
    };
    let ranges: Vec<KeyRange> = (0..n)
        .map(|i| KeyRange {
            from: edge(i),
            to: edge(i + 1),
            shard: ShardId(i),
        })
        .collect();
    RangeMap::new(&ranges, true, n).unwrap()
}

/// Text ranges split at the given sorted, distinct, non-empty points, dealt to shards
/// round-robin.
fn text_ranges(points: &[String], shards: u32) -> Vec<KeyRange> {
    let bound = |i: usize| -> Option<Bound> {
        i.checked_sub(1)
            .and_then(|i| points.get(i))
            .map(|p| Bound::Text(p.clone()))
    };
    (0..=points.len())
        .map(|i| KeyRange {
            from: bound(i),
            to: points.get(i).map(|p| Bound::Text(p.clone())),
            shard: ShardId(i as u32 % shards),
        })
        .collect()
}

#[test]
fn placement_is_deterministic() {
    let ids = integer_keys();
    assert_deterministic(&even_numeric(5), &even_numeric(5), ids);
}

/// Even ranges over uniformly spread integers: max/mean ≤ 1.05 over 100,000 keys.
#[test]
fn even_ranges_balance_uniform_integers_within_five_percent() {
    let ids = integer_keys();
    for n in SHARD_COUNTS {
        let ratio = max_over_mean(&loads(&even_numeric(n), ids));
        println!("range  N={n:>2}: max/mean {ratio:.4} (bound 1.05, uniform integers)");
        assert!(ratio <= 1.05, "N={n}: max/mean {ratio}");
    }
}

/// Splitting the widest of N even ranges moves 1/(2N) of uniform integers (within
/// 0.01), all to the new shard, exactly the keys in the upper half of the split range.
#[test]
fn adding_a_shard_moves_half_the_widest_range_to_the_new_shard() {
    let ids = integer_keys();
    for n in 1..=10 {
        let before = even_numeric(n);
        let after = before.with_added_shard();
        let m = movement(&before, &after, ids);
        let expected = 1.0 / f64::from(2 * n);
        println!(
            "range  N={n:>2}->{}: moved {:.4} (expected {expected:.4} ± 0.01, uniform integers)",
            n + 1,
            m.moved
        );
        assert_eq!(m.between_old, 0, "N={n}: keys moved between old shards");
        assert!(
            (m.moved - expected).abs() <= 0.01,
            "N={n}: moved {}",
            m.moved
        );
        let new = after.ranges_of(ShardId(n));
        assert_eq!(new.len(), 1);
        let (Some(Bound::Number(from)), to) = (&new[0].from, &new[0].to) else {
            panic!("{new:?}");
        };
        for k in ids {
            let x = k.number().unwrap();
            let inside = x >= *from
                && to
                    .as_ref()
                    .is_none_or(|t| matches!(t, Bound::Number(t) if x < *t));
            assert_eq!(after.shard_of(k) == ShardId(n), inside, "{x}");
        }
    }
}

/// Text keys: only keys of the split range move, all to the new shard.
#[test]
fn adding_a_shard_to_text_ranges_moves_only_the_upper_half() {
    let keys = text_keys();
    let points: Vec<String> = ["C", "m", "user_2", "user_5", "é"]
        .map(String::from)
        .to_vec();
    let before = RangeMap::new(&text_ranges(&points, 3), false, 3).unwrap();
    let after = before.with_added_shard();
    let m = movement(&before, &after, keys);
    println!(
        "range  text N=3->4: moved {:.4} (split at {})",
        m.moved,
        before.widest_midpoint()
    );
    assert_eq!(m.between_old, 0);
    assert!(m.moved > 0.0);
}

proptest! {
    /// Any sorted set of split points is a valid map, and every key lands in the range
    /// that holds it: `from ≤ key < to`.
    #[test]
    fn every_key_lands_in_the_range_that_holds_it(
        points in prop::collection::btree_set("[a-z]{1,3}", 1..12),
        keys in prop::collection::vec("[a-z]{1,4}", 1..64),
    ) {
        let points: Vec<String> = points.into_iter().collect();
        let shards = 3.min(points.len() as u32 + 1);
        let map = RangeMap::new(&text_ranges(&points, shards), false, shards).unwrap();
        for key in &keys {
            let input = KeyInput::text(key);
            let r = map.range(map.index_of(&input));
            prop_assert_eq!(r.shard, map.shard_of(&input));
            let text = |b: &Option<Bound>| match b {
                Some(Bound::Text(t)) => Some(t.clone()),
                _ => None,
            };
            prop_assert!(text(&r.from).is_none_or(|f| f.as_str() <= key.as_str()));
            prop_assert!(text(&r.to).is_none_or(|t| key.as_str() < t.as_str()));
        }
    }

    /// Moving one boundary off its neighbour's end is refused: a gap or an overlap.
    #[test]
    fn gaps_and_overlaps_are_refused(
        points in prop::collection::btree_set("[b-y]{1,3}", 2..8),
        at in any::<prop::sample::Index>(),
        later in any::<bool>(),
    ) {
        let points: Vec<String> = points.into_iter().collect();
        let mut ranges = text_ranges(&points, 2);
        let i = at.index(points.len()) + 1;
        let from = points[i - 1].clone();
        let moved = if later { format!("{from}~") } else { from[..from.len() - 1].to_string() + "a" };
        prop_assume!(moved != from && !moved.is_empty());
        ranges[i].from = Some(Bound::Text(moved));
        prop_assert!(RangeMap::new(&ranges, false, 2).is_err());
    }

    /// The midpoint rule always splits strictly inside the widest range, so the new
    /// shard gets keys and no range becomes empty.
    #[test]
    fn added_shard_splits_strictly_inside(
        points in prop::collection::btree_set("[ -~]{1,20}", 1..10),
    ) {
        let points: Vec<String> = points.into_iter().collect();
        let shards = 2.min(points.len() as u32 + 1);
        let before = RangeMap::new(&text_ranges(&points, shards), false, shards).unwrap();
        let after = before.with_added_shard();
        prop_assert_eq!(after.len(), before.len() + 1);
        let added = after.ranges_of(ShardId(shards));
        prop_assert_eq!(added.len(), 1);
        prop_assert!(RangeMap::new(&after.ranges(), false, shards + 1).is_ok());
    }
}
