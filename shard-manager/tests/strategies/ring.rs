//! `hash_ring`: the bounds stated in `shard_manager::routing::strategy::ring`.

use proptest::prelude::*;
use shard_manager::routing::strategy::{HashRing, Sharding};
use shard_manager::ShardId;

use crate::common::*;

/// Vnode counts the bounds are asserted at: the floor the issue names, the default, and
/// a large ring.
const VNODES: [u32; 3] = [100, 256, 1000];

/// The stated factor: 1 + 4/√V (four standard deviations of a shard's ring share).
fn bound(vnodes: u32) -> f64 {
    1.0 + 4.0 / f64::from(vnodes).sqrt()
}

#[test]
fn placement_is_deterministic() {
    let keys = text_keys();
    assert_deterministic(&HashRing::new(4, 256), &HashRing::new(4, 256), keys);
}

/// Load ≤ (1 + 4/√V) × fair share for V ≥ 100, N ≤ 10: measured over keys, and exact
/// over the ring (each shard's share of the 2⁶⁴ positions, no sampling).
#[test]
fn shards_stay_within_four_over_root_v_of_their_share() {
    let keys = text_keys();
    for v in VNODES {
        for n in SHARD_COUNTS {
            let ring = HashRing::new(n, v);
            let ratio = max_over_mean(&loads(&ring, keys));
            let exact = (0..n)
                .map(|s| ring.share(ShardId(s)) * f64::from(n))
                .fold(0.0, f64::max);
            println!(
                "ring   V={v:>4} N={n:>2}: max/mean {ratio:.4}, exact {exact:.4} (bound {:.4})",
                bound(v)
            );
            assert!(ratio <= bound(v), "V={v} N={n}: max/mean {ratio}");
            assert!(exact <= bound(v), "V={v} N={n}: exact max share {exact}");
        }
    }
}

/// Weights multiply points, and each shard stays within the same factor of its weighted
/// share.
#[test]
fn weighted_shards_take_their_weighted_share() {
    let keys = text_keys();
    let weights = [1, 2, 1, 3];
    for v in VNODES {
        let ring = HashRing::weighted(v, &weights);
        let ratio = max_over_fair(&loads(&ring, keys), &weights);
        println!(
            "ring   V={v:>4} weights {weights:?}: max/fair {ratio:.4} (bound {:.4})",
            bound(v)
        );
        assert!(ratio <= bound(v), "V={v}: max/fair {ratio}");
        assert_eq!(ring.points_of(ShardId(3)), 3 * v);
    }
}

/// Only the new shard's points are added: moved keys all go to it, and their fraction
/// is within a factor 1 ± 4/√V of 1/(N+1), and equals its ring share up to sampling.
/// At the floor the bounds are stated for (V = 100) and at the default (V = 256).
#[test]
fn adding_a_shard_moves_about_one_in_n_plus_one_keys_to_the_new_shard() {
    let keys = text_keys();
    for v in [100, 256] {
        for n in 1..=10 {
            let before = HashRing::new(n, v);
            let after = before.with_added_shard();
            let m = movement(&before, &after, keys);
            let expected = 1.0 / f64::from(n + 1);
            let slack = bound(v) - 1.0;
            println!(
                "ring   V={v:>4} N={n:>2}->{}: moved {:.4} (expected {expected:.4} × [{:.2}, {:.2}])",
                n + 1,
                m.moved,
                1.0 - slack,
                1.0 + slack
            );
            assert_eq!(
                m.between_old, 0,
                "V={v} N={n}: keys moved between old shards"
            );
            assert!(
                (m.moved - expected).abs() <= expected * slack,
                "V={v} N={n}: moved {}",
                m.moved
            );
            assert!((m.moved - after.share(ShardId(n))).abs() <= 0.01);
        }
    }
}

proptest! {
    /// The owner of a hash is the first point at or after it, wrapping: checked against
    /// a linear scan of every point.
    #[test]
    fn successor_is_the_first_point_at_or_after_the_hash(hash in any::<u64>(), n in 1u32..=5) {
        let ring = HashRing::weighted(8, &vec![1; n as usize]);
        let mut points: Vec<(u64, u32)> = (0..n)
            .flat_map(|s| (0..8).map(move |v| (HashRing::point_position(ShardId(s), v), s)))
            .collect();
        points.sort_unstable();
        let expected = points.iter().find(|p| p.0 >= hash).unwrap_or(&points[0]);
        let (at, shard, _) = ring.successor(hash);
        prop_assert_eq!((at, shard.0), *expected);
    }
}
