//! `rebalance`'s plan, pure: which slots to move so that every shard holds about the
//! same bytes (or the same number of slots, or takes the same requests). Greedy and bounded: while the heaviest and
//! the lightest shard differ by more than the tolerance, the heaviest gives the lightest
//! its largest slot that narrows the gap (a slot of `s` bytes narrows it by `2s` when
//! `s` is below the gap). Moves between one pair of shards are merged into one move.

use std::collections::BTreeMap;

use shard_manager::routing::ShardId;

/// What to even out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Measure {
    /// Bytes stored (rows' on-disk size, per slot).
    Bytes,
    /// Slots owned.
    Slots,
    /// Requests over the last minute, every live gateway's (the load per slot they
    /// publish for the cluster view of analytics).
    Load,
}

/// One planned move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub from: ShardId,
    pub to: ShardId,
    /// Ascending.
    pub slots: Vec<i32>,
    /// What they weigh (bytes, or slots).
    pub weight: u64,
}

/// Each shard's total weight, from `owners[slot]` and `weights[slot]`.
pub fn totals(owners: &[ShardId], weights: &[u64], shards: usize) -> Vec<u64> {
    let mut totals = vec![0u64; shards];
    for (owner, w) in owners.iter().zip(weights) {
        if let Some(t) = totals.get_mut(owner.index()) {
            *t += w;
        }
    }
    totals
}

/// The moves that bring every shard within `tolerance` (a fraction of the mean) of
/// the others, as far as whole slots allow. `retired` shards give everything away and
/// take nothing.
pub fn plan(
    owners: &[ShardId],
    weights: &[u64],
    shards: usize,
    tolerance: f64,
    retired: &[ShardId],
) -> Vec<Planned> {
    let mut owners = owners.to_vec();
    let mut totals = totals(&owners, weights, shards);
    let active: Vec<usize> = (0..shards)
        .filter(|i| !retired.contains(&ShardId(*i as u32)))
        .collect();
    if active.is_empty() {
        return Vec::new();
    }
    let mut moved: BTreeMap<(u32, u32), (Vec<i32>, u64)> = BTreeMap::new();
    let mut give = |owners: &mut Vec<ShardId>, totals: &mut Vec<u64>, slot: usize, to: usize| {
        let from = owners[slot].index();
        totals[from] -= weights[slot];
        totals[to] += weights[slot];
        owners[slot] = ShardId(to as u32);
        let entry = moved.entry((from as u32, to as u32)).or_default();
        entry.0.push(slot as i32);
        entry.1 += weights[slot];
    };
    // Retired shards first: every slot goes to the lightest active shard.
    for slot in 0..owners.len() {
        if retired.contains(&owners[slot]) {
            let lightest = *active
                .iter()
                .min_by_key(|i| (totals[**i], **i))
                .unwrap_or(&active[0]);
            give(&mut owners, &mut totals, slot, lightest);
        }
    }
    let mean = active.iter().map(|i| totals[*i]).sum::<u64>() as f64 / active.len() as f64;
    let allowed = (mean * tolerance).max(1.0);
    for _ in 0..owners.len() {
        let heavy = *active
            .iter()
            .max_by_key(|i| (totals[**i], std::cmp::Reverse(**i)))
            .unwrap_or(&active[0]);
        let light = *active
            .iter()
            .min_by_key(|i| (totals[**i], **i))
            .unwrap_or(&active[0]);
        let gap = totals[heavy] - totals[light];
        if (gap as f64) <= allowed {
            break;
        }
        // The largest slot of the heavy shard that narrows the gap: below it, weighed.
        let best = (0..owners.len())
            .filter(|s| owners[*s].index() == heavy && weights[*s] > 0 && weights[*s] < gap)
            .max_by_key(|s| (weights[*s].min(gap - weights[*s]), std::cmp::Reverse(*s)));
        let Some(slot) = best else { break };
        give(&mut owners, &mut totals, slot, light);
    }
    moved
        .into_iter()
        .map(|((from, to), (mut slots, weight))| {
            slots.sort_unstable();
            Planned {
                from: ShardId(from),
                to: ShardId(to),
                slots,
                weight,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(i: u32) -> ShardId {
        ShardId(i)
    }

    #[test]
    fn a_heavy_shard_gives_its_largest_useful_slots_to_the_lightest() {
        // Shard 0: slots 0-3 of 100 bytes each; shard 1: slots 4-7, empty.
        let owners = [s(0), s(0), s(0), s(0), s(1), s(1), s(1), s(1)];
        let weights = [100, 100, 100, 100, 0, 0, 0, 0];
        let moves = plan(&owners, &weights, 2, 0.05, &[]);
        assert_eq!(moves.len(), 1);
        assert_eq!(moves[0].from, s(0));
        assert_eq!(moves[0].to, s(1));
        assert_eq!(moves[0].slots.len(), 2);
        assert_eq!(moves[0].weight, 200);
        let after = totals(
            &[s(1), s(1), s(0), s(0), s(1), s(1), s(1), s(1)],
            &weights,
            2,
        );
        assert_eq!(after, vec![200, 200]);
    }

    #[test]
    fn a_balanced_cluster_plans_nothing_and_a_skewed_one_ends_within_tolerance() {
        let owners: Vec<ShardId> = (0..300).map(|i| s(i % 3)).collect();
        assert!(plan(&owners, &[10; 300], 3, 0.05, &[]).is_empty());
        // Shard 2's slots are ten times heavier.
        let weights: Vec<u64> = (0..300)
            .map(|i| if i % 3 == 2 { 100 } else { 10 })
            .collect();
        let moves = plan(&owners, &weights, 3, 0.05, &[]);
        let mut owners_after = owners.clone();
        for m in &moves {
            assert_eq!(m.from, s(2));
            for slot in &m.slots {
                owners_after[*slot as usize] = m.to;
            }
        }
        let t = totals(&owners_after, &weights, 3);
        let mean = t.iter().sum::<u64>() as f64 / 3.0;
        let (min, max) = (*t.iter().min().unwrap(), *t.iter().max().unwrap());
        assert!((max - min) as f64 <= mean * 0.05, "{t:?}");
    }

    #[test]
    fn a_retired_shard_gives_everything_and_takes_nothing() {
        let owners: Vec<ShardId> = (0..12).map(|i| s(i % 3)).collect();
        let moves = plan(&owners, &[1; 12], 3, 0.0, &[s(1)]);
        let given: usize = moves
            .iter()
            .filter(|m| m.from == s(1))
            .map(|m| m.slots.len())
            .sum();
        assert_eq!(given, 4);
        assert!(moves.iter().all(|m| m.to != s(1)));
    }
}
