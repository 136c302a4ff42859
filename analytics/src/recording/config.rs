//! How much the recorder may remember, and how finely it splits its work.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::recording::error_log::MAX_MESSAGE_BYTES;
use crate::recording::labels::{OUTCOMES, ROLES};
use crate::recording::latency::LATENCY_BYTES;
use crate::recording::timeline;

/// Longest report window when the configuration does not say otherwise: long enough to
/// see a deploy or a failover play out, short enough that the rings stay small.
pub const DEFAULT_MAX_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Upper limit on `max_window_secs`: the coarse ring grows with the window, so an hour
/// is where a scraper with real storage (Prometheus) should take over.
pub const MAX_WINDOW_LIMIT: Duration = Duration::from_secs(60 * 60);

/// Limits of the request analytics (`/api/analytics/*`, `/metrics`, the dashboard). Every
/// field bounds memory; none changes meaning.
///
/// Deserializable with defaults for missing fields, so it can sit in the gateway's
/// configuration tree. Out-of-range values are clamped by [`crate::Analytics::new`]
/// (see [`AnalyticsConfig::normalized`]) rather than refused: metrics must never stop
/// the gateway from starting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnalyticsConfig {
    /// How many error events the ring keeps for `GET /api/analytics/errors` (1 to
    /// 100000); older ones are overwritten, so memory stays fixed during an error storm.
    pub error_capacity: usize,
    /// Longest window a report may cover, in seconds (1 to 3600).
    pub max_window_secs: u64,
    /// Distinct endpoint labels kept (1 to 1024) before new ones are folded into
    /// `"other"`, so a client probing random URLs cannot grow the label set.
    pub max_endpoints: usize,
    /// Shards `0..max_shards` get their own label; higher ids fold into `"other"` (1 to
    /// 1024).
    pub max_shards: u32,
    /// Distinct Prometheus series (endpoint × method × shard × role × outcome) per
    /// stripe (16 to 65536) before new combinations fold into one overflow series per
    /// role/outcome.
    pub max_series: usize,
    /// Replica servers whose lag is tracked (1 to 65536); more would mean a
    /// misbehaving caller.
    pub max_replicas: usize,
    /// Number of independently locked accumulators (1 to 64); unset: twice the CPU
    /// count rounded up to a power of two, so two recording threads rarely share one.
    pub stripes: Option<usize>,
    /// How often this gateway publishes its figures for the other gateways' cluster
    /// view, in milliseconds (100 to 60000). Off the request path: a background task
    /// takes the figures and writes one row.
    pub publish_ms: u64,
    /// A live gateway whose published figures are older than this (milliseconds, at
    /// least twice `publish_ms`) is named in the cluster view's `missing_gateways`.
    pub stale_ms: u64,
    /// Count each keyed request toward its slot's load and its key's heat
    /// (`/api/shards/load`): four atomic adds and a sketch update per request. Off, the
    /// load view stays empty; for an A/B of what it costs.
    pub load_per_slot: bool,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self {
            error_capacity: 1000,
            max_window_secs: DEFAULT_MAX_WINDOW.as_secs(),
            max_endpoints: 16,
            max_shards: 16,
            max_series: 512,
            max_replicas: 256,
            stripes: None,
            publish_ms: 1000,
            stale_ms: 3000,
            load_per_slot: true,
        }
    }
}

impl AnalyticsConfig {
    /// The configuration actually used: every limit clamped into its sane range and
    /// the stripe count resolved to a power of two.
    pub fn normalized(&self) -> Self {
        let auto_stripes = || {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            cpus * 2
        };
        let stripes = self.stripes.unwrap_or_else(auto_stripes).clamp(1, 64);
        Self {
            error_capacity: self.error_capacity.clamp(1, 100_000),
            max_window_secs: self.max_window_secs.clamp(1, MAX_WINDOW_LIMIT.as_secs()),
            max_endpoints: self.max_endpoints.clamp(1, 1024),
            max_shards: self.max_shards.clamp(1, 1024),
            max_series: self.max_series.clamp(16, 65_536),
            max_replicas: self.max_replicas.clamp(1, 65_536),
            stripes: Some(stripes.next_power_of_two()),
            publish_ms: self.publish_ms.clamp(100, 60_000),
            stale_ms: self
                .stale_ms
                .clamp(2 * self.publish_ms.clamp(100, 60_000), 600_000),
            load_per_slot: self.load_per_slot,
        }
    }

    /// Refuses a limit outside its range, naming the field as it appears in the
    /// gateway's configuration (`analytics.<field>`), so a typo cannot silently shrink or
    /// grow what the recorder keeps. ([`Self::normalized`] clamps instead, for callers
    /// that must never fail.)
    pub fn validate(&self) -> Result<(), String> {
        let check = |name: &str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(format!("analytics.{name} is {value}; use {min} to {max}"))
            }
        };
        check("error_capacity", self.error_capacity as u64, 1, 100_000)?;
        check(
            "max_window_secs",
            self.max_window_secs,
            1,
            MAX_WINDOW_LIMIT.as_secs(),
        )?;
        check("max_endpoints", self.max_endpoints as u64, 1, 1024)?;
        check("max_shards", u64::from(self.max_shards), 1, 1024)?;
        check("max_series", self.max_series as u64, 16, 65_536)?;
        check("max_replicas", self.max_replicas as u64, 1, 65_536)?;
        if let Some(stripes) = self.stripes {
            check("stripes", stripes as u64, 1, 64)?;
        }
        check("publish_ms", self.publish_ms, 100, 60_000)?;
        check("stale_ms", self.stale_ms, 2 * self.publish_ms, 600_000)?;
        Ok(())
    }

    /// The longest window a report may cover.
    pub fn max_window(&self) -> Duration {
        Duration::from_secs(self.max_window_secs)
    }

    /// Upper bound, in bytes, of the heap a recorder with this configuration can use
    /// once every label slot has seen traffic (typical use is a fraction of it, since
    /// per-label histograms are allocated on first use).
    ///
    /// Dominated by latency histograms: one per label value (overall, 4 roles,
    /// 5 outcomes, endpoints + 1, shards + 1) in each timeline slot, each stripe's
    /// current second, and one report being built. With the defaults: 44 histograms
    /// of ~10 KiB in 36 slots, about 17 MB.
    pub fn memory_bound_bytes(&self) -> usize {
        let c = self.normalized();
        let stripes = c.stripes.unwrap_or(1);
        let histograms_per_slot =
            1 + ROLES.len() + OUTCOMES.len() + c.max_endpoints + 1 + c.max_shards as usize + 1;
        let slots = timeline::slot_count(c.max_window_secs) + stripes + 1;
        let histograms = histograms_per_slot * slots * (LATENCY_BYTES + CELL_OVERHEAD_BYTES);
        let series_per_stripe = c.max_series + 2 * ROLES.len() * OUTCOMES.len();
        let series = stripes * series_per_stripe * SERIES_BYTES;
        let seconds = (c.max_window_secs.max(60) as usize + 2) * 24;
        let errors = c.error_capacity * ERROR_EVENT_BYTES;
        let replicas = c.max_replicas * REPLICA_BYTES;
        histograms + series + seconds + errors + replicas
    }
}

/// Per-cell bookkeeping next to a histogram (box, counters, option), rounded up.
const CELL_OVERHEAD_BYTES: usize = 128;
/// One Prometheus series: 17 buckets, sum, rows, key, and hash table overhead.
const SERIES_BYTES: usize = 224;
/// One error event with a full message and a long endpoint name.
const ERROR_EVENT_BYTES: usize = 128 + MAX_MESSAGE_BYTES + 4 + 128 + 16;
/// One replica entry with a long server name, keyed by a copy of it.
const REPLICA_BYTES: usize = 2 * 128 + 96;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_field_out_of_range() {
        assert_eq!(AnalyticsConfig::default().validate(), Ok(()));
        let zero = AnalyticsConfig {
            error_capacity: 0,
            ..AnalyticsConfig::default()
        };
        assert_eq!(
            zero.validate(),
            Err("analytics.error_capacity is 0; use 1 to 100000".into())
        );
        let huge = AnalyticsConfig {
            max_window_secs: 86_400,
            ..AnalyticsConfig::default()
        };
        assert_eq!(
            huge.validate(),
            Err("analytics.max_window_secs is 86400; use 1 to 3600".into())
        );
    }

    #[test]
    fn normalized_clamps_and_rounds_stripes_to_a_power_of_two() {
        let config = AnalyticsConfig {
            error_capacity: 0,
            max_window_secs: 1_000_000,
            stripes: Some(3),
            ..AnalyticsConfig::default()
        }
        .normalized();
        assert_eq!(config.error_capacity, 1);
        assert_eq!(config.max_window_secs, 3600);
        assert_eq!(config.stripes, Some(4));
    }

    #[test]
    fn automatic_stripes_are_a_power_of_two() {
        let stripes = AnalyticsConfig::default().normalized().stripes;
        assert!(stripes.is_some_and(|n| n.is_power_of_two() && n >= 2));
    }

    #[test]
    fn the_default_memory_bound_is_under_twenty_megabytes() {
        let config = AnalyticsConfig {
            stripes: Some(4),
            ..AnalyticsConfig::default()
        };
        let bound = config.memory_bound_bytes();
        assert!((10_000_000..20_000_000).contains(&bound), "{bound}");
    }

    #[test]
    fn missing_fields_take_defaults() {
        let config: AnalyticsConfig =
            serde_json::from_str(r#"{"error_capacity": 10}"#).expect("valid configuration json");
        assert_eq!(config.error_capacity, 10);
        assert_eq!(config.max_window_secs, 900);
    }
}
