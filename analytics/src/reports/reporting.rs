//! Turns merged counters and histograms into the [`MetricsReport`] a dashboard reads.
//!
//! Runs after every lock is released: percentiles and label names are computed on a
//! private copy of the window.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::recording::labels::{OUTCOMES, ROLES};
use crate::recording::latency::Latency;
use crate::recording::replicas::{summarize, ReplicaLag};
use crate::recording::slot::{Counts, Slot};
use crate::reports::metrics::{
    ratio, CacheCounts, ErrorClassCounts, ErrorSummary, LatencyReport, MetricsReport, ShardReport,
    Throughput, Totals,
};

/// Everything a report is made of, gathered under the locks.
pub(crate) struct Parts {
    pub(crate) generated_at: DateTime<Utc>,
    pub(crate) uptime_secs: u64,
    pub(crate) window_secs: u64,
    pub(crate) detail_window_secs: u64,
    pub(crate) totals: Counts,
    pub(crate) throughput: Throughput,
    /// The merged detail window.
    pub(crate) detail: Slot,
    /// Name of each endpoint index.
    pub(crate) endpoint_names: Vec<String>,
    /// Name of each shard slot.
    pub(crate) shard_names: Vec<String>,
    pub(crate) replicas: Vec<ReplicaLag>,
}

pub(crate) fn build(parts: Parts) -> MetricsReport {
    let Parts {
        detail,
        endpoint_names,
        shard_names,
        ..
    } = &parts;
    let name = |names: &[String], index: usize| names.get(index).cloned().unwrap_or_default();

    let mut by_endpoint = BTreeMap::new();
    let mut errors_by_endpoint = BTreeMap::new();
    for (index, cell) in present(&detail.endpoints) {
        by_endpoint.insert(name(endpoint_names, index), cell.latency.summary());
        if cell.errors > 0 {
            errors_by_endpoint.insert(name(endpoint_names, index), cell.errors);
        }
    }
    let mut by_shard = BTreeMap::new();
    let mut shards = BTreeMap::new();
    for (index, cell) in present(&detail.shards) {
        by_shard.insert(name(shard_names, index), cell.latency.summary());
        let report = ShardReport {
            requests: cell.latency.count(),
            reads: cell.reads,
            writes: cell.writes,
            errors: cell.errors,
            rows_written: cell.rows_written,
            rows_read: cell.rows_read,
            by_role: cell.roles.into(),
        };
        shards.insert(name(shard_names, index), report);
    }
    let labelled = |cells: &[Option<Box<Latency>>], labels: &[&str]| {
        present(cells)
            .map(|(index, latency)| {
                let label = labels.get(index).copied().unwrap_or_default();
                (label.to_owned(), latency.summary())
            })
            .collect()
    };

    let counts = &detail.counts;
    let errors = ErrorSummary {
        count: counts.errors,
        rate: ratio(counts.errors, counts.requests),
        per_sec: ratio(counts.errors, parts.detail_window_secs),
        by_class: ErrorClassCounts::from(counts.errors_by_class),
        by_endpoint: errors_by_endpoint,
    };
    let replica_summary = summarize(&parts.replicas);
    MetricsReport {
        generated_at: parts.generated_at,
        uptime_secs: parts.uptime_secs,
        window_secs: parts.window_secs,
        detail_window_secs: parts.detail_window_secs,
        totals: totals(&parts.totals),
        throughput: parts.throughput.clone(),
        latency: LatencyReport {
            overall: detail.overall.summary(),
            by_endpoint,
            by_shard,
            by_role: labelled(&detail.by_role, &ROLES),
            by_outcome: labelled(&detail.by_outcome, &OUTCOMES),
        },
        errors,
        shards,
        cache: CacheCounts::from(counts.cache),
        replicas: parts.replicas.clone(),
        replica_summary,
    }
}

fn totals(counts: &Counts) -> Totals {
    Totals {
        requests: counts.requests,
        errors: counts.errors,
        errors_by_class: ErrorClassCounts::from(counts.errors_by_class),
        rows_written: counts.rows_written,
        rows_read: counts.rows_read,
        cache: CacheCounts::from(counts.cache),
    }
}

/// Cells that saw at least one request, with their index.
fn present<T: crate::recording::slot::HasCount>(
    cells: &[Option<Box<T>>],
) -> impl Iterator<Item = (usize, &T)> {
    cells
        .iter()
        .enumerate()
        .filter_map(|(index, cell)| cell.as_deref().map(|c| (index, c)))
        .filter(|(_, cell)| cell.count() > 0)
}
