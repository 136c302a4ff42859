//! `modulo`: the bounds stated in `shard_manager::routing::strategy::modulo`.

use proptest::prelude::*;
use shard_manager::routing::strategy::{KeyInput, Modulo, Sharding};

use crate::common::*;

#[test]
fn placement_is_deterministic() {
    let keys = text_keys();
    assert_deterministic(&Modulo::new(3, false), &Modulo::new(3, false), keys);
    let ids = integer_keys();
    assert_deterministic(&Modulo::new(7, true), &Modulo::new(7, true), ids);
}

/// Hash form: max/mean ≤ 1.05 over 100,000 keys for N ≤ 10.
#[test]
fn hashed_keys_balance_within_five_percent() {
    let keys = text_keys();
    for n in SHARD_COUNTS {
        let ratio = max_over_mean(&loads(&Modulo::new(n, false), keys));
        println!("modulo N={n:>2}: max/mean {ratio:.4} (bound 1.05)");
        assert!(ratio <= 1.05, "N={n}: max/mean {ratio}");
    }
}

/// Numeric form: consecutive ids are dealt round-robin, loads differ by at most one.
#[test]
fn consecutive_ids_are_dealt_evenly() {
    let ids = consecutive_ids();
    for n in SHARD_COUNTS {
        let loads = loads(&Modulo::new(n, true), ids);
        let (lo, hi) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
        assert!(hi - lo <= 1, "N={n}: {loads:?}");
    }
}

/// N → N+1 moves N/(N+1) of keys, within 0.01, hashed keys and consecutive ids alike.
#[test]
fn adding_a_shard_moves_n_in_n_plus_one_keys() {
    let keys = text_keys();
    let ids = consecutive_ids();
    for n in 1..=10 {
        let expected = f64::from(n) / f64::from(n + 1);
        for (form, numeric, keys) in [("hash", false, keys), ("id", true, ids)] {
            let before = Modulo::new(n, numeric);
            let m = movement(&before, &before.with_added_shard(), keys);
            println!(
                "modulo N={n:>2}->{} ({form}): moved {:.4} (expected {expected:.4} ± 0.01)",
                n + 1,
                m.moved
            );
            assert!(
                (m.moved - expected).abs() <= 0.01,
                "N={n} {form}: {}",
                m.moved
            );
        }
    }
}

proptest! {
    /// Any integer, negative ones too, lands in `0..N` at `id mod N` (Euclidean).
    #[test]
    fn every_integer_lands_on_its_euclidean_remainder(id in any::<i64>(), n in 1u32..=64) {
        let text = id.to_string();
        let shard = Modulo::new(n, true).shard_of(&KeyInput::numeric(&text).unwrap());
        prop_assert_eq!(i64::from(shard.0), id.rem_euclid(i64::from(n)));
    }
}
