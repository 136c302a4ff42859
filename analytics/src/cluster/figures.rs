//! One gateway's figures as other gateways read them, for the cluster view.
//!
//! A gateway publishes [`Figures`] every `analytics.publish_ms` (off the request path:
//! a background task takes them, the metadata database carries them); another gateway
//! merges them into its own report with [`crate::Analytics::cluster_report`]. Nothing
//! is summarised before the merge: histograms travel as their non-empty buckets, so
//! the cluster's percentiles are those of one histogram that had recorded every
//! gateway's requests (exact to the same 1% as a single gateway's).
//!
//! Seconds are the publisher's own (counted from its start); `started_ms` places them
//! on the wall clock, so the reader maps them onto its own seconds. Each gateway's
//! 5 s and 60 s slots start where its recorder started, so the window's edges are each
//! gateway's own slots, rounded out as a single gateway's are.

use serde::{Deserialize, Serialize};

use crate::load::slot_load::LoadFigures;
use crate::recording::labels::{shard_name, shard_slot, Interner, OTHER};
use crate::recording::latency::ExportedLatency;
use crate::recording::slot::{Counts, ShardCell, Slot};
use crate::recording::timeline::Held;

/// A gateway's recorder as plain data: what the cluster view needs of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Wall-clock time of the publisher's second 0, in Unix milliseconds.
    pub started_ms: i64,
    /// The publisher's second when it took these figures: earlier seconds are complete.
    pub second: u64,
    /// Counts since the publisher started.
    pub(crate) totals: Counts,
    /// `[second, requests]` for each second its throughput ring holds.
    pub(crate) seconds: Vec<[u64; 2]>,
    /// The 5 s slots it holds.
    pub(crate) fine: Vec<ExportedSlot>,
    /// The 60 s slots it holds.
    pub(crate) coarse: Vec<ExportedSlot>,
    /// Its load per slot of the key space, and its hottest keys.
    #[serde(default)]
    pub load: LoadFigures,
}

impl Figures {
    /// Requests the publisher counted since it started.
    pub fn requests(&self) -> u64 {
        self.totals.requests
    }

    /// The figures as bytes to publish (JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Plain data with string keys only: serialization cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Figures another gateway published; `None` when they cannot be read (a
    /// gateway of another version), which the cluster view counts as not answering.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    /// Builds the figures of a recorder's timeline.
    pub(crate) fn of(
        started_ms: i64,
        second: u64,
        totals: Counts,
        held: Held<'_>,
        endpoints: &Interner,
        shard_cap: u32,
    ) -> Self {
        let export =
            |(start, slot): &(u64, &Slot)| ExportedSlot::of(*start, slot, endpoints, shard_cap);
        Self {
            started_ms,
            second,
            totals,
            seconds: held.seconds,
            fine: held.fine.iter().map(export).collect(),
            coarse: held.coarse.iter().map(export).collect(),
            load: LoadFigures::default(),
        }
    }
}

/// One time slot, with labels by name (indices differ between gateways).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ExportedSlot {
    /// The slot's first second, in the publisher's seconds.
    pub(crate) start: u64,
    pub(crate) counts: Counts,
    pub(crate) overall: ExportedLatency,
    /// `(role index, latency)`; role indices are fixed (`labels::ROLES`).
    pub(crate) by_role: Vec<(usize, ExportedLatency)>,
    /// `(outcome index, latency)`; outcome indices are fixed (`labels::OUTCOMES`).
    pub(crate) by_outcome: Vec<(usize, ExportedLatency)>,
    /// `(endpoint, errors, latency)`.
    pub(crate) endpoints: Vec<(String, u64, ExportedLatency)>,
    /// `(shard label, cell)`.
    pub(crate) shards: Vec<(String, ExportedShard)>,
}

/// A [`ShardCell`] as published.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ExportedShard {
    pub(crate) reads: u64,
    pub(crate) writes: u64,
    pub(crate) errors: u64,
    pub(crate) rows_written: u64,
    pub(crate) rows_read: u64,
    pub(crate) roles: [u64; 4],
    pub(crate) latency: ExportedLatency,
}

impl ExportedSlot {
    fn of(start: u64, slot: &Slot, endpoints: &Interner, shard_cap: u32) -> Self {
        let indexed = |cells: &[Option<Box<crate::recording::latency::Latency>>]| {
            cells
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.as_deref().map(|l| (i, l)))
                .filter(|(_, l)| l.count() > 0)
                .map(|(i, l)| (i, l.export()))
                .collect()
        };
        Self {
            start,
            counts: slot.counts.clone(),
            overall: slot.overall.export(),
            by_role: indexed(&slot.by_role),
            by_outcome: indexed(&slot.by_outcome),
            endpoints: slot
                .endpoints
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.as_deref().map(|c| (i, c)))
                .filter(|(_, c)| c.latency.count() > 0)
                .map(|(i, c)| (endpoints.name(i).to_owned(), c.errors, c.latency.export()))
                .collect(),
            shards: slot
                .shards
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.as_deref().map(|c| (i, c)))
                .filter(|(_, c)| c.latency.count() > 0)
                .map(|(i, c)| (shard_name(i, shard_cap), ExportedShard::of(c)))
                .collect(),
        }
    }

    /// Adds this slot to `out`, finding each label's cell by name.
    pub(crate) fn merge_into(&self, out: &mut Slot, endpoints: &Interner, shard_cap: u32) {
        out.counts.merge(&self.counts);
        out.overall.merge_exported(&self.overall);
        for (index, latency) in &self.by_role {
            if let Some(cell) = out.by_role.get_mut(*index) {
                cell.get_or_insert_with(Box::default)
                    .merge_exported(latency);
            }
        }
        for (index, latency) in &self.by_outcome {
            if let Some(cell) = out.by_outcome.get_mut(*index) {
                cell.get_or_insert_with(Box::default)
                    .merge_exported(latency);
            }
        }
        for (name, errors, latency) in &self.endpoints {
            if let Some(cell) = out.endpoints.get_mut(endpoints.index(name)) {
                let cell = cell.get_or_insert_with(Box::default);
                cell.errors += errors;
                cell.latency.merge_exported(latency);
            }
        }
        for (name, shard) in &self.shards {
            let index = match name.as_str() {
                OTHER => shard_cap as usize,
                id => match id.parse::<u32>() {
                    Ok(id) => shard_slot(id, shard_cap),
                    Err(_) => shard_cap as usize,
                },
            };
            if let Some(cell) = out.shards.get_mut(index) {
                shard.merge_into(cell.get_or_insert_with(Box::default));
            }
        }
    }
}

impl ExportedShard {
    fn of(cell: &ShardCell) -> Self {
        Self {
            reads: cell.reads,
            writes: cell.writes,
            errors: cell.errors,
            rows_written: cell.rows_written,
            rows_read: cell.rows_read,
            roles: cell.roles,
            latency: cell.latency.export(),
        }
    }

    fn merge_into(&self, cell: &mut ShardCell) {
        cell.reads += self.reads;
        cell.writes += self.writes;
        cell.errors += self.errors;
        cell.rows_written += self.rows_written;
        cell.rows_read += self.rows_read;
        for (mine, theirs) in cell.roles.iter_mut().zip(self.roles) {
            *mine += theirs;
        }
        cell.latency.merge_exported(&self.latency);
    }
}

/// Another gateway's seconds on this one's clock: `their second + offset` is ours.
pub(crate) fn offset_secs(ours_started_ms: i64, theirs_started_ms: i64) -> i64 {
    (theirs_started_ms - ours_started_ms).div_euclid(1000)
        + i64::from((theirs_started_ms - ours_started_ms).rem_euclid(1000) >= 500)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_to_the_nearest_second() {
        assert_eq!(offset_secs(10_000, 10_000), 0);
        assert_eq!(offset_secs(10_000, 12_400), 2);
        assert_eq!(offset_secs(10_000, 12_600), 3);
        assert_eq!(offset_secs(10_000, 7_400), -3);
        assert_eq!(offset_secs(10_000, 7_600), -2);
    }

    #[test]
    fn figures_round_trip_through_bytes() {
        let figures = Figures {
            started_ms: 1_700_000_000_000,
            second: 42,
            seconds: vec![[40, 3], [41, 5]],
            ..Figures::default()
        };
        let back = Figures::from_bytes(&figures.to_bytes());
        assert_eq!(back, Some(figures));
        assert_eq!(Figures::from_bytes(b"not figures"), None);
    }
}
