//! A gateway's change streams, per table (`shard_manager::changes::stats`), passed at
//! scrape time, and the change log's retention.
//!
//! | family                                   | type    | labels |
//! |------------------------------------------|---------|--------|
//! | `shardgate_change_streams_open`          | gauge   | table  |
//! | `shardgate_changes_sent_total`           | counter | table  |
//! | `shardgate_change_lag_seconds`           | gauge   | table  |
//! | `shardgate_change_retention_seconds`     | gauge   |        |
//! | `shardgate_change_cuts_total`            | counter |        |

use prometheus::proto::{MetricFamily, MetricType};

use crate::exposition::encoding::{counter, family, gauge};

/// One table's streams on this gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct TableChanges {
    /// The table's name.
    pub table: String,
    /// Server-Sent Events streams open now.
    pub open: u64,
    /// Changes sent since the gateway started.
    pub sent: u64,
    /// Commit to send, of the newest change of the last page with changes.
    pub lag_secs: f64,
}

/// The gateway's change streams.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeStreams {
    /// Each table a stream or a page was served for.
    pub tables: Vec<TableChanges>,
    /// How long each shard keeps its change log (`changes.retention_secs`).
    pub retention_secs: u64,
    /// Cuts the gateway took for change pages (waiting readers share one per tick).
    pub cuts: u64,
}

/// The families (none of the per-table ones before a table's first stream or page).
pub(crate) fn families(changes: &ChangeStreams) -> Vec<MetricFamily> {
    let per_table = |name: &str, help: &str, kind: MetricType, value: fn(&TableChanges) -> f64| {
        let samples = changes
            .tables
            .iter()
            .map(|t| match kind {
                MetricType::COUNTER => counter(&[("table", &t.table)], value(t)),
                _ => gauge(&[("table", &t.table)], value(t)),
            })
            .collect();
        family(name, help, kind, samples)
    };
    let mut families = Vec::new();
    if !changes.tables.is_empty() {
        families.push(per_table(
            "shardgate_change_streams_open",
            "Change streams (Server-Sent Events of GET /api/changes) open now on this gateway, by table.",
            MetricType::GAUGE,
            |t| t.open as f64,
        ));
        families.push(per_table(
            "shardgate_changes_sent_total",
            "Changes this gateway sent to change-stream consumers (pages and events), by table.",
            MetricType::COUNTER,
            |t| t.sent as f64,
        ));
        families.push(per_table(
            "shardgate_change_lag_seconds",
            "Seconds from the commit of the newest change of a table's last page to its sending: the lag a consumer that keeps up sees.",
            MetricType::GAUGE,
            |t| t.lag_secs,
        ));
    }
    families.push(family(
        "shardgate_change_retention_seconds",
        "How long each shard keeps its change log (changes.retention_secs); an older cursor answers 410.",
        MetricType::GAUGE,
        vec![gauge(&[], changes.retention_secs as f64)],
    ));
    families.push(family(
        "shardgate_change_cuts_total",
        "Cuts (the fence and every primary) this gateway took to read change pages; readers waiting for a change share one per tick.",
        MetricType::COUNTER,
        vec![counter(&[], changes.cuts as f64)],
    ));
    families
}
