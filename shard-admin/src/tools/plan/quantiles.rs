//! A range map for clusters that do not route by range, so the plan can still show what
//! range sharding would move: the current keys, in key order, cut into N ranges of
//! about equal record counts (as a range-sharded system balances itself), and the
//! range with the most records split at its middle key for the new shard (as real
//! range rebalancers split where the data is; see `RangeMap::with_split`).
//!
//! Pure: fed one key at a time in key order, with its record count.

use shard_manager::routing::strategy::{Bound, KeyRange, RangeMap};
use shard_manager::routing::ShardId;

/// Finds the cut points while keys stream past in order.
#[derive(Debug)]
pub struct QuantileFinder {
    total: u64,
    parts: u64,
    numeric: bool,
    /// Records seen before the current key.
    seen: u64,
    /// Where ranges 1.. start.
    starts: Vec<String>,
    /// Records per range.
    sizes: Vec<u64>,
    /// For each range, the first key at or past its middle record (if inside it).
    middles: Vec<Option<String>>,
    /// The next middle threshold to look for.
    next_middle: u64,
    last_key: Option<String>,
}

/// The map before and after, or why there is none.
pub type Split = Result<(RangeMap, RangeMap), String>;

impl QuantileFinder {
    /// `total` records will be fed, to be cut into `parts` ranges.
    pub fn new(total: u64, parts: u32, numeric: bool) -> Self {
        let parts = u64::from(parts.max(1));
        Self {
            total,
            parts,
            numeric,
            seen: 0,
            starts: Vec::new(),
            sizes: vec![0],
            middles: vec![None],
            next_middle: 0,
            last_key: None,
        }
    }

    /// The next key in key order, holding `records` records.
    pub fn observe(&mut self, key: &str, records: u64) {
        let range = self.starts.len() as u64;
        // Range r + 1 starts at the first key with `seen ≥ (r + 1)·total/parts`.
        if range + 1 < self.parts && self.seen * self.parts >= (range + 1) * self.total {
            self.starts.push(key.to_owned());
            self.sizes.push(0);
            self.middles.push(None);
        }
        let index = self.starts.len();
        let range = index as u64;
        // Middle of range r: the first key with `seen ≥ (2r + 1)·total/(2·parts)`,
        // when that key is inside range r and is not where it starts.
        while self.next_middle < self.parts
            && self.seen * 2 * self.parts >= (2 * self.next_middle + 1) * self.total
        {
            let starts_here = index > 0 && self.starts[index - 1] == key;
            let first_key = index == 0 && self.seen == 0;
            if self.next_middle == range && !starts_here && !first_key {
                self.middles[index] = Some(key.to_owned());
            }
            self.next_middle += 1;
        }
        self.sizes[index] += records;
        self.seen += records;
        self.last_key = Some(key.to_owned());
    }

    /// The quantile map over `parts` shards and the same map with its busiest splittable
    /// range split at its middle key, the upper half given to the new shard.
    pub fn finish(self) -> Split {
        if self.starts.len() + 1 < self.parts as usize {
            return Err(format!(
                "{} keys hold too few distinct values to cut {} ranges",
                self.last_key.map_or("no", |_| "the"),
                self.parts
            ));
        }
        let bound = |key: &str| -> Result<Bound, String> {
            if self.numeric {
                key.parse::<i64>()
                    .map(Bound::Number)
                    .map_err(|_| format!("key {key:?} is not an integer"))
            } else {
                Ok(Bound::Text(key.to_owned()))
            }
        };
        let mut ranges = Vec::with_capacity(self.parts as usize);
        for i in 0..self.parts as usize {
            ranges.push(KeyRange {
                from: i
                    .checked_sub(1)
                    .map(|j| bound(&self.starts[j]))
                    .transpose()?,
                to: self.starts.get(i).map(|k| bound(k)).transpose()?,
                shard: ShardId(i as u32),
            });
        }
        let before =
            RangeMap::new(&ranges, self.numeric, self.parts as u32).map_err(|e| e.to_string())?;
        let busiest = (0..self.sizes.len())
            .filter(|&i| self.middles[i].is_some())
            .max_by_key(|&i| (self.sizes[i], std::cmp::Reverse(i)))
            .ok_or("no range holds two distinct keys to split between")?;
        let at = bound(self.middles[busiest].as_deref().unwrap_or_default())?;
        let after = before
            .with_split(at, ShardId(self.parts as u32))
            .map_err(|e| e.to_string())?;
        Ok((before, after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shard_manager::routing::strategy::{KeyInput, Sharding};

    #[test]
    fn cuts_equal_ranges_and_splits_the_busiest_in_the_middle() {
        // Keys k00..k11, one record each, except k09 with five: 16 records, 3 parts.
        let mut q = QuantileFinder::new(16, 3, false);
        for i in 0..12 {
            q.observe(&format!("k{i:02}"), if i == 9 { 5 } else { 1 });
        }
        let (before, after) = q.finish().unwrap();
        // seen ≥ 16/3 at k06 (seen 6), ≥ 32/3 at k10 (seen 14).
        let shard = |m: &RangeMap, k: &str| m.shard_of(&KeyInput::text(k)).0;
        assert_eq!(shard(&before, "k05"), 0);
        assert_eq!(shard(&before, "k06"), 1);
        assert_eq!(shard(&before, "k10"), 2);
        // Range 1 (k06..k09) holds 8 records, the most; its middle record threshold,
        // seen ≥ 8 = 3·16/6, is reached at k08 (seen 8).
        assert_eq!(shard(&after, "k07"), 1);
        assert_eq!(shard(&after, "k08"), 3);
        assert_eq!(shard(&after, "k09"), 3);
        assert_eq!(shard(&after, "k10"), 2);
    }

    #[test]
    fn too_few_keys_are_reported() {
        let mut q = QuantileFinder::new(10, 3, false);
        q.observe("only", 10);
        assert!(q.finish().unwrap_err().contains("too few distinct"));
    }
}
