//! The hottest keys in bounded memory: a Space-Saving sketch (Metwally, Agrawal and
//! El Abbadi, 2005).
//!
//! The sketch keeps `capacity` counters. A key already counted adds one to its
//! counter; a new key takes the smallest counter over, inheriting its count as its
//! possible overestimate (`error`). Any key seen more than `n / capacity` times out of
//! `n` is certainly held, and a held key's true count lies in `count - error ..= count`.
//! Sketches merge by adding counters key by key and keeping the largest, the usual
//! way for mergeable summaries.
//!
//! Recording allocates nothing once the sketch is full: a taken-over counter reuses
//! its key's buffer, and keys are found by a 64-bit keyed hash (SipHash with this
//! process's random key, so a client cannot craft keys that collide).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::recording::labels::FastHash;

/// One counted key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCount {
    /// The shard key.
    pub key: String,
    /// Its slot of the key space.
    pub slot: u32,
    /// Requests counted for it (an upper bound: see `error`).
    pub count: u64,
    /// How much of `count` may belong to keys it took the counter over from.
    pub error: u64,
}

/// A Space-Saving sketch of `capacity` counters.
pub(crate) struct SpaceSaving {
    capacity: usize,
    entries: Vec<(u64, KeyCount)>,
    /// Key hash → index in `entries`.
    index: HashMap<u64, usize, FastHash>,
}

impl SpaceSaving {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            entries: Vec::with_capacity(capacity),
            index: HashMap::with_capacity_and_hasher(capacity, FastHash::default()),
        }
    }

    /// Counts one request for `key` (whose keyed hash is `hash`).
    pub(crate) fn offer(&mut self, hash: u64, key: &str, slot: u32) {
        if let Some(entry) = self.index.get(&hash).and_then(|&i| self.entries.get_mut(i)) {
            entry.1.count += 1;
            return;
        }
        if self.entries.len() < self.capacity {
            self.index.insert(hash, self.entries.len());
            self.entries.push((
                hash,
                KeyCount {
                    key: key.to_owned(),
                    slot,
                    count: 1,
                    error: 0,
                },
            ));
            return;
        }
        let Some((at, _)) = self
            .entries
            .iter()
            .enumerate()
            .min_by_key(|(_, (_, e))| e.count)
        else {
            return;
        };
        let (old_hash, entry) = &mut self.entries[at];
        self.index.remove(old_hash);
        *old_hash = hash;
        entry.key.clear();
        entry.key.push_str(key);
        entry.slot = slot;
        entry.error = entry.count;
        entry.count += 1;
        self.index.insert(hash, at);
    }

    /// Empties the sketch, keeping its buffers.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.index.clear();
    }

    /// The counters held, in no order.
    pub(crate) fn counts(&self) -> impl Iterator<Item = &KeyCount> {
        self.entries.iter().map(|(_, e)| e)
    }
}

/// Merges counted keys from several sketches (stripes, gateways) and keeps the `top`
/// largest, largest first; ties by key, so the order is stable.
pub fn merge_top<'a>(sources: impl IntoIterator<Item = &'a KeyCount>, top: usize) -> Vec<KeyCount> {
    let mut merged: HashMap<&str, KeyCount> = HashMap::new();
    for count in sources {
        let entry = merged
            .entry(count.key.as_str())
            .or_insert_with(|| KeyCount {
                key: count.key.clone(),
                slot: count.slot,
                count: 0,
                error: 0,
            });
        entry.count += count.count;
        entry.error += count.error;
    }
    let mut all: Vec<KeyCount> = merged.into_values().collect();
    all.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    all.truncate(top);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(sketch: &mut SpaceSaving, key: &str) {
        // FNV-1a: any hash where equal keys hash equally will do here.
        let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        sketch.offer(hash, key, 7);
    }

    #[test]
    fn a_key_above_n_over_capacity_is_always_held_with_a_bounded_error() {
        let mut sketch = SpaceSaving::new(8);
        // 1,000 requests: "hot" every fourth, the rest 750 distinct cold keys.
        for i in 0..1000 {
            if i % 4 == 0 {
                offer(&mut sketch, "hot");
            } else {
                offer(&mut sketch, &format!("cold-{i}"));
            }
        }
        let top = merge_top(sketch.counts(), 1);
        assert_eq!(top[0].key, "hot");
        assert!(top[0].count - top[0].error <= 250 && 250 <= top[0].count);
        assert_eq!(top[0].slot, 7);
        assert_eq!(sketch.counts().count(), 8);
    }

    #[test]
    fn merging_adds_counts_key_by_key_and_keeps_the_largest() {
        let a = [
            KeyCount {
                key: "x".into(),
                slot: 1,
                count: 5,
                error: 0,
            },
            KeyCount {
                key: "y".into(),
                slot: 2,
                count: 3,
                error: 1,
            },
        ];
        let b = [
            KeyCount {
                key: "y".into(),
                slot: 2,
                count: 4,
                error: 0,
            },
            KeyCount {
                key: "z".into(),
                slot: 3,
                count: 1,
                error: 0,
            },
        ];
        let top = merge_top(a.iter().chain(&b), 2);
        assert_eq!(
            top.iter()
                .map(|k| (k.key.as_str(), k.count, k.error))
                .collect::<Vec<_>>(),
            [("y", 7, 1), ("x", 5, 0)]
        );
    }

    #[test]
    fn clear_keeps_nothing() {
        let mut sketch = SpaceSaving::new(2);
        offer(&mut sketch, "a");
        sketch.clear();
        assert_eq!(sketch.counts().count(), 0);
    }
}
