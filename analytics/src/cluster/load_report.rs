//! The JSON shape of `GET /api/shards/load`, built from merged [`LoadFigures`] and the
//! map's slot → shard assignment.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cluster::view::Coverage;
use crate::load::slot_load::{LoadFigures, SlotCounts, WINDOWS};

/// How many slots `hot_slots` lists.
pub const HOT_SLOTS: usize = 10;
/// How many keys `hot_keys` lists.
pub const HOT_KEYS: usize = 10;

/// Load over one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LoadFigure {
    /// Requests.
    pub requests: u64,
    /// Requests per second over the seconds covered.
    pub requests_per_sec: f64,
    /// Bytes the gateways answered with.
    pub bytes_read: u64,
    /// Bytes the gateways received.
    pub bytes_written: u64,
    /// Microseconds the shard spent on these requests.
    pub shard_micros: u64,
    /// Seconds covered (the window, rounded out to whole buckets; less after a start).
    pub secs: u64,
}

impl LoadFigure {
    fn of(counts: &SlotCounts, secs: u64) -> Self {
        Self {
            requests: counts.requests,
            requests_per_sec: crate::reports::metrics::ratio(counts.requests, secs),
            bytes_read: counts.bytes_read,
            bytes_written: counts.bytes_written,
            shard_micros: counts.shard_micros,
            secs,
        }
    }
}

/// One slot's load, by window (`10s`, `1m`, `10m`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SlotLoadView {
    /// The slot.
    pub slot: u32,
    /// The shard that owns it in the map routed with.
    pub shard: Option<u32>,
    /// Its load per window.
    pub windows: BTreeMap<String, LoadFigure>,
}

/// A slot among the hottest over the last 10 s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HotSlot {
    /// The slot.
    pub slot: u32,
    /// The shard that owns it.
    pub shard: Option<u32>,
    /// Its load over the last 10 s.
    pub load: LoadFigure,
    /// Its share of its shard's requests over the last 10 s (0 to 1).
    pub share_of_shard: f64,
    /// Its share of the cluster's requests over the last 10 s (0 to 1).
    pub share_of_cluster: f64,
}

/// A key among the hottest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HotKey {
    /// The shard key.
    pub key: String,
    /// Its slot.
    pub slot: u32,
    /// The shard that owns the slot.
    pub shard: Option<u32>,
    /// Requests counted (an upper bound; the true count is at least
    /// `requests - error`).
    pub requests: u64,
    /// The sketch's possible overcount.
    pub error: u64,
}

/// `GET /api/shards/load`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LoadReport {
    /// When the report was built.
    pub generated_at: DateTime<Utc>,
    /// The slot count of the key space.
    pub slot_count: u32,
    /// The windows reported, shortest first.
    pub windows: Vec<String>,
    /// Each shard's load by window (keyed by shard id).
    pub shards: BTreeMap<String, BTreeMap<String, LoadFigure>>,
    /// Every slot with a request in the last 10 minutes, by slot.
    pub slots: Vec<SlotLoadView>,
    /// The hottest slots over the last 10 s (then 1 min, then 10 min), hottest first.
    pub hot_slots: Vec<HotSlot>,
    /// The hottest keys over the last one to two minutes, hottest first.
    pub hot_keys: Vec<HotKey>,
    /// Seconds the hot keys were counted over.
    pub hot_keys_secs: u64,
    /// The gateways merged and those missing.
    #[serde(flatten)]
    pub coverage: Coverage,
}

impl LoadReport {
    /// Builds the report of `figures` (one gateway's or several merged), with
    /// `shard_of` the map's owner of each slot.
    pub fn build(
        figures: &LoadFigures,
        shard_of: impl Fn(u32) -> Option<u32>,
        coverage: Coverage,
    ) -> Self {
        let names: Vec<String> = WINDOWS.iter().map(|(n, _)| (*n).to_owned()).collect();
        let mut slots: BTreeMap<u32, SlotLoadView> = BTreeMap::new();
        let mut shard_sums: BTreeMap<Option<u32>, Vec<SlotCounts>> = BTreeMap::new();
        for (w, window) in figures.windows.iter().enumerate().take(names.len()) {
            for (slot, counts) in &window.slots {
                let shard = shard_of(*slot);
                slots
                    .entry(*slot)
                    .or_insert_with(|| SlotLoadView {
                        slot: *slot,
                        shard,
                        windows: BTreeMap::new(),
                    })
                    .windows
                    .insert(names[w].clone(), LoadFigure::of(counts, window.secs));
                let sums = shard_sums
                    .entry(shard)
                    .or_insert_with(|| vec![SlotCounts::default(); names.len()]);
                sums[w].add(counts);
            }
        }
        let secs = |w: usize| figures.windows.get(w).map_or(0, |x| x.secs);
        let shards = shard_sums
            .iter()
            .map(|(shard, sums)| {
                let name = shard.map_or_else(|| "unassigned".to_owned(), |s| s.to_string());
                let by_window = sums
                    .iter()
                    .enumerate()
                    .map(|(w, c)| (names[w].clone(), LoadFigure::of(c, secs(w))))
                    .collect();
                (name, by_window)
            })
            .collect();
        let requests =
            |view: &SlotLoadView, w: usize| view.windows.get(&names[w]).map_or(0, |f| f.requests);
        let mut hottest: Vec<&SlotLoadView> = slots.values().collect();
        hottest.sort_by(|a, b| {
            (requests(b, 0), requests(b, 1), requests(b, 2))
                .cmp(&(requests(a, 0), requests(a, 1), requests(a, 2)))
                .then(a.slot.cmp(&b.slot))
        });
        let cluster_10s: u64 = shard_sums.values().map(|s| s[0].requests).sum();
        let hot_slots = hottest
            .iter()
            .take(HOT_SLOTS)
            .map(|view| {
                let load = view.windows.get(&names[0]).copied().unwrap_or(LoadFigure {
                    secs: secs(0),
                    ..LoadFigure::default()
                });
                let shard_10s = shard_sums.get(&view.shard).map_or(0, |s| s[0].requests);
                HotSlot {
                    slot: view.slot,
                    shard: view.shard,
                    share_of_shard: crate::reports::metrics::ratio(load.requests, shard_10s),
                    share_of_cluster: crate::reports::metrics::ratio(load.requests, cluster_10s),
                    load,
                }
            })
            .collect();
        let hot_keys = figures
            .hot_keys
            .iter()
            .take(HOT_KEYS)
            .map(|k| HotKey {
                key: k.key.clone(),
                slot: k.slot,
                shard: shard_of(k.slot),
                requests: k.count,
                error: k.error,
            })
            .collect();
        Self {
            generated_at: Utc::now(),
            slot_count: figures.slot_count,
            windows: names,
            shards,
            slots: slots.into_values().collect(),
            hot_slots,
            hot_keys,
            hot_keys_secs: figures.hot_keys_secs,
            coverage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::heavy_hitters::KeyCount;
    use crate::load::slot_load::WindowLoad;

    fn counts(requests: u64) -> SlotCounts {
        SlotCounts {
            requests,
            bytes_read: requests * 10,
            bytes_written: 0,
            shard_micros: requests * 100,
        }
    }

    #[test]
    fn the_hottest_slot_leads_with_its_shard_and_shares() {
        let figures = LoadFigures {
            slot_count: 8,
            windows: vec![
                WindowLoad {
                    secs: 10,
                    slots: vec![(1, counts(10)), (6, counts(30))],
                },
                WindowLoad {
                    secs: 60,
                    slots: vec![(1, counts(60)), (6, counts(30)), (7, counts(5))],
                },
                WindowLoad {
                    secs: 600,
                    slots: vec![(1, counts(600)), (6, counts(30)), (7, counts(5))],
                },
            ],
            hot_keys: vec![KeyCount {
                key: "k".into(),
                slot: 6,
                count: 30,
                error: 0,
            }],
            hot_keys_secs: 60,
        };
        // Slots 0-3 on shard 0, 4-7 on shard 1.
        let report = LoadReport::build(&figures, |s| Some(s / 4), Coverage::default());
        assert_eq!(report.hot_slots[0].slot, 6);
        assert_eq!(report.hot_slots[0].shard, Some(1));
        assert_eq!(report.hot_slots[0].load.requests_per_sec, 3.0);
        assert_eq!(report.hot_slots[0].share_of_shard, 1.0);
        assert_eq!(report.hot_slots[0].share_of_cluster, 0.75);
        // Slot 7 had nothing in 10 s: it comes last, after slot 1.
        let order: Vec<u32> = report.hot_slots.iter().map(|h| h.slot).collect();
        assert_eq!(order, [6, 1, 7]);
        assert_eq!(report.shards["1"]["1m"].requests, 35);
        assert_eq!(report.shards["0"]["10m"].requests, 600);
        assert_eq!(report.hot_keys[0].shard, Some(1));
        assert_eq!(report.slots.len(), 3);
    }
}
