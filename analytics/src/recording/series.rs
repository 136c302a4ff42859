//! Cumulative Prometheus series: one histogram of fixed buckets per combination of
//! endpoint, method, shard, role and outcome, with a cap on how many combinations exist.

use std::collections::HashMap;

use crate::recording::exemplars::BucketExemplars;
use crate::recording::labels::FastHash;
use crate::recording::latency::Buckets;
use crate::recording::slot::Point;

/// The label combination of a series, packed into one integer so the hot path hashes
/// eight bytes. Ordering by the packed value sorts by endpoint, method, shard, role,
/// outcome, which keeps the exposition stable between scrapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SeriesKey(u64);

/// The label indices a [`SeriesKey`] packs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeriesLabels {
    pub(crate) endpoint: usize,
    pub(crate) method: usize,
    /// Shard slot, or `None` for requests that reached no shard.
    pub(crate) shard: Option<usize>,
    pub(crate) role: usize,
    pub(crate) outcome: usize,
}

impl SeriesKey {
    pub(crate) fn new(labels: SeriesLabels) -> Self {
        let shard = labels.shard.map_or(0, |s| s as u64 + 1);
        Self(
            (labels.endpoint as u64 & 0xffff) << 40
                | (labels.method as u64 & 0xff) << 32
                | (shard & 0xffff) << 16
                | (labels.role as u64 & 0xff) << 8
                | (labels.outcome as u64 & 0xff),
        )
    }

    pub(crate) fn of(point: &Point) -> Self {
        Self::new(SeriesLabels {
            endpoint: point.endpoint,
            method: point.method,
            shard: point.shard,
            role: point.role,
            outcome: point.outcome,
        })
    }

    pub(crate) fn labels(self) -> SeriesLabels {
        let shard = (self.0 >> 16) & 0xffff;
        SeriesLabels {
            endpoint: ((self.0 >> 40) & 0xffff) as usize,
            method: ((self.0 >> 32) & 0xff) as usize,
            shard: shard.checked_sub(1).map(|s| s as usize),
            role: ((self.0 >> 8) & 0xff) as usize,
            outcome: (self.0 & 0xff) as usize,
        }
    }
}

/// Everything Prometheus gets about one label combination, since start.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SeriesStats {
    pub(crate) duration: Buckets,
    /// The latest sampled request of each duration bucket, for OpenMetrics exemplars.
    pub(crate) exemplars: BucketExemplars,
    pub(crate) rows_written: u64,
    pub(crate) rows_read: u64,
}

impl SeriesStats {
    fn observe(&mut self, point: &Point) {
        self.duration.observe(point.micros);
        self.rows_written += point.rows_written;
        self.rows_read += point.rows_read;
    }

    pub(crate) fn merge(&mut self, other: &SeriesStats) {
        self.duration.merge(&other.duration);
        self.exemplars.merge(&other.exemplars);
        self.rows_written += other.rows_written;
        self.rows_read += other.rows_read;
    }
}

/// One stripe's series, bounded: once `cap` combinations exist, new ones are counted
/// under a single overflow combination per role and outcome, whose endpoint, method
/// and shard read `"other"`. Role and outcome are kept so error counts stay right.
pub(crate) struct SeriesMap {
    map: HashMap<SeriesKey, SeriesStats, FastHash>,
    cap: usize,
    /// Label indices meaning `"other"`: endpoint, method, shard.
    other: (usize, usize, usize),
}

impl SeriesMap {
    pub(crate) fn new(cap: usize, other: (usize, usize, usize)) -> Self {
        Self {
            map: HashMap::with_capacity_and_hasher(cap.min(64), FastHash::default()),
            cap,
            other,
        }
    }

    /// Adds `point` to its series (or the overflow's) and returns that series, for
    /// the caller to offer it an exemplar.
    pub(crate) fn record(&mut self, point: &Point) -> &mut SeriesStats {
        let key = SeriesKey::of(point);
        let key = if self.map.len() < self.cap || self.map.contains_key(&key) {
            key
        } else {
            self.overflow(point)
        };
        let stats = self.map.entry(key).or_default();
        stats.observe(point);
        stats
    }

    fn overflow(&self, point: &Point) -> SeriesKey {
        let (endpoint, method, shard) = self.other;
        SeriesKey::new(SeriesLabels {
            endpoint,
            method,
            shard: point.shard.map(|_| shard),
            role: point.role,
            outcome: point.outcome,
        })
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&SeriesKey, &SeriesStats)> {
        self.map.iter()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::sample::OpKind;

    fn point(endpoint: usize, shard: Option<usize>, outcome: usize) -> Point {
        Point {
            endpoint,
            method: 1,
            shard,
            role: 0,
            outcome,
            kind: OpKind::Write,
            micros: 2_000,
            rows_written: 3,
            rows_read: 0,
        }
    }

    #[test]
    fn keys_round_trip_their_labels() {
        let labels = SeriesLabels {
            endpoint: 1024,
            method: 7,
            shard: Some(1024),
            role: 3,
            outcome: 4,
        };
        assert_eq!(SeriesKey::new(labels).labels(), labels);
        let unsharded = SeriesLabels {
            shard: None,
            ..labels
        };
        assert_eq!(SeriesKey::new(unsharded).labels(), unsharded);
    }

    #[test]
    fn past_the_cap_new_combinations_share_an_overflow_series() {
        let mut series = SeriesMap::new(2, (9, 7, 16));
        series.record(&point(0, Some(0), 0));
        series.record(&point(1, Some(0), 0));
        series.record(&point(2, Some(5), 0));
        series.record(&point(3, Some(6), 0));
        series.record(&point(4, Some(1), 2));
        series.record(&point(0, Some(0), 0));
        assert_eq!(series.len(), 4);
        let overflow: Vec<_> = series
            .iter()
            .filter(|(key, _)| key.labels().endpoint == 9)
            .map(|(key, stats)| (key.labels().outcome, stats.duration.count()))
            .collect();
        assert_eq!(overflow.len(), 2);
        assert!(overflow.contains(&(0, 2)));
        assert!(overflow.contains(&(2, 1)));
    }
}
