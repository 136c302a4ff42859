//! The two latency accumulators: an HDR histogram for percentiles over a window, and
//! fixed Prometheus buckets for cumulative series; and the [`LatencySummary`] of one
//! histogram that a report carries.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Largest latency told apart, in microseconds (60 s); slower requests are counted
/// as 60 s in percentiles (the exact maximum is kept separately).
const HIGHEST_MICROS: u64 = 60_000_000;
/// Two significant digits: percentiles within 1%, and 2,560 `u32` counters (10 KiB)
/// per histogram, which is what lets every window slot carry one per label.
const SIGNIFICANT_DIGITS: u8 = 2;

/// Approximate heap size of one [`Latency`], for the memory bound in the docs.
pub(crate) const LATENCY_BYTES: usize = 2_560 * 4 + 64;

/// Latencies of a set of requests, merge-able across stripes and time slots.
///
/// Values are microseconds. Percentiles come from the HDR histogram (an upper bound
/// within 1%); count, mean and max are exact because they are kept beside it.
#[derive(Clone)]
pub(crate) struct Latency {
    histogram: Histogram<u32>,
    sum_micros: u64,
    max_micros: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    pub(crate) fn new() -> Self {
        // The bounds are constants that satisfy every precondition of
        // `new_with_bounds` (low >= 1, high >= 2 * low, sigfig <= 5); a unit test
        // constructs them, so this arm is never taken.
        let histogram = match Histogram::new_with_bounds(1, HIGHEST_MICROS, SIGNIFICANT_DIGITS) {
            Ok(histogram) => histogram,
            Err(error) => unreachable!("constant histogram bounds are valid: {error:?}"),
        };
        Self {
            histogram,
            sum_micros: 0,
            max_micros: 0,
        }
    }

    pub(crate) fn record(&mut self, micros: u64) {
        self.histogram.saturating_record(micros);
        self.sum_micros = self.sum_micros.saturating_add(micros);
        self.max_micros = self.max_micros.max(micros);
    }

    pub(crate) fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// Adds another accumulator's requests to this one.
    pub(crate) fn merge(&mut self, other: &Latency) {
        if other.count() == 0 {
            return;
        }
        // Both sides were built by `Latency::new` with the same bounds, and values are
        // clamped on record, so `add` has nothing to refuse; its `Err` is unreachable.
        let _ = self.histogram.add(&other.histogram);
        self.sum_micros = self.sum_micros.saturating_add(other.sum_micros);
        self.max_micros = self.max_micros.max(other.max_micros);
    }

    /// Empties the accumulator, keeping its allocation for the next time slot.
    pub(crate) fn clear(&mut self) {
        if self.count() > 0 {
            self.histogram.reset();
        }
        self.sum_micros = 0;
        self.max_micros = 0;
    }

    /// The accumulator as plain numbers another gateway can rebuild exactly: each
    /// non-empty bucket as `[value, count]` (the value is the bucket's highest
    /// equivalent, which records into the same bucket), with the exact sum and max.
    pub(crate) fn export(&self) -> ExportedLatency {
        ExportedLatency {
            buckets: self
                .histogram
                .iter_recorded()
                .map(|v| [v.value_iterated_to(), u64::from(v.count_at_value())])
                .collect(),
            sum_micros: self.sum_micros,
            max_micros: self.max_micros,
        }
    }

    /// Adds an exported accumulator: the same counts in the same buckets as if its
    /// requests had been recorded here.
    pub(crate) fn merge_exported(&mut self, other: &ExportedLatency) {
        for &[value, count] in &other.buckets {
            let count = u32::try_from(count).unwrap_or(u32::MAX);
            self.histogram.saturating_record_n(value, count);
        }
        self.sum_micros = self.sum_micros.saturating_add(other.sum_micros);
        self.max_micros = self.max_micros.max(other.max_micros);
    }

    /// Percentiles and exact count/mean/max, in milliseconds rounded to microseconds.
    pub(crate) fn summary(&self) -> LatencySummary {
        let count = self.count();
        if count == 0 {
            return LatencySummary::default();
        }
        let at = |q: f64| millis(self.histogram.value_at_quantile(q));
        LatencySummary {
            count,
            p50: at(0.50),
            p90: at(0.90),
            p95: at(0.95),
            p99: at(0.99),
            p999: at(0.999),
            max: millis(self.max_micros),
            mean: round_micros(self.sum_micros as f64 / count as f64 / 1000.0),
        }
    }
}

/// Distribution of one set of latencies, in milliseconds.
///
/// Percentiles are upper bounds within 1% (HDR histogram, two significant digits);
/// `count`, `mean` and `max` are exact. All zero when `count` is zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LatencySummary {
    /// Requests measured.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest request.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

/// A [`Latency`] as published to other gateways (see [`crate::cluster::figures`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ExportedLatency {
    /// `[bucket value in µs, count]` for each non-empty bucket.
    pub(crate) buckets: Vec<[u64; 2]>,
    pub(crate) sum_micros: u64,
    pub(crate) max_micros: u64,
}

#[cfg(test)]
impl ExportedLatency {
    pub(crate) fn count(&self) -> u64 {
        self.buckets.iter().map(|[_, n]| n).sum()
    }
}

fn millis(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn round_micros(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// Latency in whole microseconds, saturating; the unit every accumulator records.
pub(crate) fn micros(latency: Duration) -> u64 {
    u64::try_from(latency.as_micros()).unwrap_or(u64::MAX)
}

/// Upper bounds of the Prometheus buckets, in seconds: from 100 µs (a cache hit) to
/// 10 s (a stuck shard), roughly 1-2.5-5 per decade as client libraries do.
pub(crate) const BUCKET_BOUNDS_SECS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The same bounds in microseconds, compared against on the hot path.
const BUCKET_BOUNDS_MICROS: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Buckets of a [`Buckets`]: one per bound, and `+Inf`.
pub(crate) const BUCKET_SLOTS: usize = BUCKET_BOUNDS_MICROS.len() + 1;

/// The bucket `micros` falls in: the first whose bound it does not exceed, or the
/// last (`+Inf`).
pub(crate) fn bucket_slot(micros: u64) -> usize {
    BUCKET_BOUNDS_MICROS.partition_point(|&bound| bound < micros)
}

/// A cumulative Prometheus histogram: per-bucket counts (not yet cumulative), the
/// `+Inf` overflow, count and sum. 160 bytes, so one per series is cheap.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Buckets {
    /// `counts[i]` holds observations in `(bound[i-1], bound[i]]`; the last slot
    /// holds those above every bound.
    counts: [u64; BUCKET_SLOTS],
    pub(crate) sum_secs: f64,
}

impl Buckets {
    pub(crate) fn observe(&mut self, micros: u64) {
        self.counts[bucket_slot(micros)] += 1;
        self.sum_secs += micros as f64 / 1e6;
    }

    pub(crate) fn merge(&mut self, other: &Buckets) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
        self.sum_secs += other.sum_secs;
    }

    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// `(upper bound, observations <= bound)` for each finite bound, as Prometheus
    /// wants them; `+Inf` is [`Buckets::count`].
    pub(crate) fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        BUCKET_BOUNDS_SECS
            .iter()
            .zip(self.counts.iter())
            .scan(0u64, |total, (&bound, &count)| {
                *total += count;
                Some((bound, *total))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_to_a_thousand_ms() -> Latency {
        let mut latency = Latency::new();
        for ms in 1..=1000u64 {
            latency.record(ms * 1000);
        }
        latency
    }

    #[test]
    fn percentiles_of_one_to_a_thousand_milliseconds() {
        // With two significant digits, 500 ms lies in a bucket of 2,048 µs starting at
        // 499,712 µs; HDR reports the bucket's highest equivalent value.
        let summary = one_to_a_thousand_ms().summary();
        assert_eq!(summary.count, 1000);
        assert_eq!(summary.p50, 501.759);
        assert_eq!(summary.p90, 901.119);
        assert_eq!(summary.p95, 950.271);
        assert_eq!(summary.p99, 991.231);
        assert_eq!(summary.p999, 999.423);
        assert_eq!(summary.max, 1000.0);
        assert_eq!(summary.mean, 500.5);
    }

    #[test]
    fn percentiles_stay_within_one_percent() {
        let summary = one_to_a_thousand_ms().summary();
        for (got, want) in [(summary.p50, 500.0), (summary.p99, 990.0)] {
            assert!((got - want).abs() / want < 0.01, "{got} vs {want}");
        }
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut low = Latency::new();
        let mut high = Latency::new();
        for ms in 1..=500u64 {
            low.record(ms * 1000);
        }
        for ms in 501..=1000u64 {
            high.record(ms * 1000);
        }
        low.merge(&high);
        assert_eq!(low.summary(), one_to_a_thousand_ms().summary());
    }

    #[test]
    fn an_exported_histogram_merges_exactly() {
        let mut low = Latency::new();
        let mut high = Latency::new();
        for ms in 1..=500u64 {
            low.record(ms * 1000);
        }
        for ms in 501..=1000u64 {
            high.record(ms * 1000);
        }
        let wire = high.export();
        assert_eq!(wire.count(), 500);
        low.merge_exported(&wire);
        assert_eq!(low.summary(), one_to_a_thousand_ms().summary());
    }

    #[test]
    fn clear_empties_and_slow_requests_keep_an_exact_max() {
        let mut latency = one_to_a_thousand_ms();
        latency.clear();
        assert_eq!(latency.summary(), LatencySummary::default());
        latency.record(120_000_000);
        assert_eq!(latency.summary().max, 120_000.0);
        assert_eq!(latency.count(), 1);
    }

    #[test]
    fn buckets_count_values_at_or_below_each_bound() {
        let mut buckets = Buckets::default();
        for micros in [100, 101, 1_000, 20_000_000] {
            buckets.observe(micros);
        }
        let cumulative: Vec<_> = buckets.cumulative().collect();
        assert_eq!(cumulative[0], (0.0001, 1));
        assert_eq!(cumulative[1], (0.00025, 2));
        assert_eq!(cumulative[3], (0.001, 3));
        assert_eq!(cumulative[15], (10.0, 3));
        assert_eq!(buckets.count(), 4);
        assert!((buckets.sum_secs - 20.001201).abs() < 1e-9);
    }
}
