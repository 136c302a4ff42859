//! A gateway's memory tier of the cache (entries held in its own memory, kept exact by
//! Redis's invalidations), in the Prometheus exposition. The gateway keeps the counts
//! and passes them at scrape time; nothing is kept here. Absent when the tier is off.
//!
//! | family                                        | type    | labels |
//! |-----------------------------------------------|---------|--------|
//! | `shardgate_cache_memory_hits_total`           | counter |        |
//! | `shardgate_cache_memory_invalidations_total`  | counter |        |
//! | `shardgate_cache_memory_flushes_total`        | counter |        |
//! | `shardgate_cache_memory_entries`              | gauge   |        |

use prometheus::proto::{MetricFamily, MetricType};

use crate::exposition::encoding::{counter, family, gauge};

/// What a gateway's memory tier did since the gateway started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryTier {
    /// Cache hits answered from memory, with no trip to Redis (also counted as hits in
    /// `shardgate_cache_events_total`).
    pub hits: u64,
    /// Keys Redis said changed.
    pub invalidations: u64,
    /// Times the tier emptied because its invalidations stopped or Redis was flushed.
    pub flushes: u64,
    /// Entries held now.
    pub entries: u64,
}

/// The families.
pub(crate) fn families(tier: &MemoryTier) -> Vec<MetricFamily> {
    vec![
        family(
            "shardgate_cache_memory_hits_total",
            "Cache hits answered from the gateway's memory tier, with no trip to Redis (also counted as hits in shardgate_cache_events_total).",
            MetricType::COUNTER,
            vec![counter(&[], tier.hits as f64)],
        ),
        family(
            "shardgate_cache_memory_invalidations_total",
            "Keys Redis said changed (CLIENT TRACKING invalidations), each evicted from the memory tier.",
            MetricType::COUNTER,
            vec![counter(&[], tier.invalidations as f64)],
        ),
        family(
            "shardgate_cache_memory_flushes_total",
            "Times the memory tier emptied: its tracking connection to Redis dropped or stopped answering, or Redis was flushed.",
            MetricType::COUNTER,
            vec![counter(&[], tier.flushes as f64)],
        ),
        family(
            "shardgate_cache_memory_entries",
            "Entries the memory tier holds now (at most cache.memory_entries).",
            MetricType::GAUGE,
            vec![gauge(&[], tier.entries as f64)],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_families_carry_the_counts() {
        let tier = MemoryTier {
            hits: 7,
            invalidations: 3,
            flushes: 1,
            entries: 42,
        };
        let families = families(&tier);
        let got: Vec<(&str, f64)> = families
            .iter()
            .map(|f| {
                let m = &f.get_metric()[0];
                let v = if f.get_field_type() == MetricType::GAUGE {
                    m.get_gauge().get_value()
                } else {
                    m.get_counter().get_value()
                };
                (f.name(), v)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("shardgate_cache_memory_hits_total", 7.0),
                ("shardgate_cache_memory_invalidations_total", 3.0),
                ("shardgate_cache_memory_flushes_total", 1.0),
                ("shardgate_cache_memory_entries", 42.0),
            ]
        );
    }
}
