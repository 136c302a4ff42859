//! The shard map a gateway routes with, in the Prometheus exposition: its version, the
//! live gateways, each shard's primary term and how many failovers and switchovers the
//! map's history holds. The gateway passes them at scrape time; nothing is kept here.
//!
//! | family                       | type    | labels       |
//! |------------------------------|---------|--------------|
//! | `shardgate_map_version`      | gauge   |              |
//! | `shardgate_gateways_live`    | gauge   |              |
//! | `shardgate_shard_term`       | gauge   | shard        |
//! | `shardgate_failovers_total`  | counter | shard, kind  |

use prometheus::proto::{MetricFamily, MetricType};

use crate::exposition::encoding::{counter, family, gauge};

/// The map as one gateway routes with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapGauges {
    /// The map version routed with (0: the configuration's map, never confirmed).
    pub version: u64,
    /// Gateways heard from lately, this one included; None while this gateway has not
    /// heard the metadata database list them.
    pub gateways_live: Option<usize>,
    /// Every shard of the map, in id order.
    pub shards: Vec<ShardTerm>,
}

/// One shard's primary term and promotions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardTerm {
    /// The shard's id.
    pub shard: u32,
    /// Its primary term: 1 at the start, one more per failover or switchover.
    pub term: u64,
    /// Failovers of the shard in the map's history.
    pub failovers: u64,
    /// Switchovers (planned promotions) of the shard in the map's history.
    pub switchovers: u64,
}

/// One of a shard's counts.
type Count = fn(&ShardTerm) -> u64;

/// The map families (none for an empty [`MapGauges`], as a gateway with no map has).
pub(crate) fn families(map: &MapGauges) -> Vec<MetricFamily> {
    if map.shards.is_empty() {
        return Vec::new();
    }
    let mut out = vec![family(
        "shardgate_map_version",
        "The shard map version this gateway routes with (0: its configuration's map, never confirmed by the metadata database).",
        MetricType::GAUGE,
        vec![gauge(&[], map.version as f64)],
    )];
    if let Some(live) = map.gateways_live {
        out.push(family(
            "shardgate_gateways_live",
            "Gateways heard from lately in the metadata database, this one included.",
            MetricType::GAUGE,
            vec![gauge(&[], live as f64)],
        ));
    }
    let ids: Vec<String> = map.shards.iter().map(|s| s.shard.to_string()).collect();
    out.push(family(
        "shardgate_shard_term",
        "Each shard's primary term in the map: 1 at the start, one more per failover or switchover.",
        MetricType::GAUGE,
        map.shards
            .iter()
            .zip(&ids)
            .map(|(s, id)| gauge(&[("shard", id)], s.term as f64))
            .collect(),
    ));
    let kinds: [(&str, Count); 2] = [
        ("failover", |s| s.failovers),
        ("switchover", |s| s.switchovers),
    ];
    out.push(family(
        "shardgate_failovers_total",
        "Promotions of each shard's primary recorded in the map's history (kind: failover, or switchover for a planned one), whichever gateway recorded them.",
        MetricType::COUNTER,
        map.shards
            .iter()
            .zip(&ids)
            .flat_map(|(s, id)| {
                kinds
                    .iter()
                    .map(move |(kind, n)| counter(&[("shard", id), ("kind", kind)], n(s) as f64))
            })
            .collect(),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::encoding::encode;

    #[test]
    fn every_shard_has_its_term_and_both_counters() {
        let text = encode(&families(&MapGauges {
            version: 7,
            gateways_live: Some(2),
            shards: vec![
                ShardTerm {
                    shard: 0,
                    term: 1,
                    ..Default::default()
                },
                ShardTerm {
                    shard: 1,
                    term: 3,
                    failovers: 1,
                    switchovers: 1,
                },
            ],
        }));
        for line in [
            "# TYPE shardgate_map_version gauge",
            "shardgate_map_version 7",
            "shardgate_gateways_live 2",
            "# TYPE shardgate_shard_term gauge",
            "shardgate_shard_term{shard=\"0\"} 1",
            "shardgate_shard_term{shard=\"1\"} 3",
            "# TYPE shardgate_failovers_total counter",
            "shardgate_failovers_total{shard=\"0\",kind=\"failover\"} 0",
            "shardgate_failovers_total{shard=\"1\",kind=\"failover\"} 1",
            "shardgate_failovers_total{shard=\"1\",kind=\"switchover\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
        }
    }

    #[test]
    fn unknown_gateways_and_an_empty_map_say_nothing() {
        let text = encode(&families(&MapGauges {
            version: 0,
            gateways_live: None,
            shards: vec![ShardTerm {
                shard: 0,
                term: 1,
                ..Default::default()
            }],
        }));
        assert!(text.contains("shardgate_map_version 0"), "{text}");
        assert!(!text.contains("shardgate_gateways_live"), "{text}");
        assert!(families(&MapGauges::default()).is_empty());
    }
}
