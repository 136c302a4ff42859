//! A promotion stored in the map: the shard's new primary, the old one listed as a
//! replica (it comes back as one, rewound or re-cloned by the HA manager), the term
//! raised, a `failover` (or, planned, `switchover`) line in `map history` (`switchover` whenever a planned one is under way:
//! [`super::planned`], whoever records it) whose detail
//! holds `shard`, `from`, `to`, `term` and how long it took (`map::promotions` reads
//! them for gateways to show). Conditional on the map still naming the old primary, so
//! when several gateways see the same promotion one stores it and the others find it
//! done.

use super::planned;
use crate::map::{meta, MapError};
use shard_manager::config::ClusterSettings;
use shard_manager::live_map::shard_map::ShardMap;
use shard_manager::live_map::PromotionKind;
use shard_manager::routing::{MapVersion, ShardId};

/// The map after a failover of `shard` from `from` to `to` (pure): `to` is the primary,
/// `from` the last replica, the term one higher.
pub fn promoted(
    map: &ShardMap,
    shard: ShardId,
    from: &str,
    to: &str,
) -> Result<ShardMap, MapError> {
    let entry = map
        .shards
        .get(shard.index())
        .ok_or_else(|| MapError::Invalid(format!("{shard} is not in the map")))?;
    if entry.primary != from {
        return Err(MapError::Invalid(format!(
            "{shard}'s primary is {}, not {from}",
            entry.primary
        )));
    }
    if !entry.replicas.iter().any(|r| r == to) {
        return Err(MapError::Invalid(format!(
            "{to} is not a replica of {shard} (its replicas: {})",
            entry.replicas.join(", ")
        )));
    }
    let mut next = map.clone();
    next.version = MapVersion(map.version.0 + 1);
    let e = &mut next.shards[shard.index()];
    e.primary = to.to_owned();
    e.replicas.retain(|r| r != to);
    e.replicas.push(from.to_owned());
    e.term += 1;
    Ok(next)
}

/// Stores the failover of `shard` from `from` to `to`, seen `detected_ms` after the
/// primary first failed a check, unless the map no longer names `from` (stored
/// already, by another gateway): the new map, or None.
pub async fn promote(
    settings: &ClusterSettings,
    shard: ShardId,
    from: &str,
    to: &str,
    detected_ms: u64,
) -> Result<Option<ShardMap>, MapError> {
    store(
        settings,
        PromotionKind::Failover,
        shard,
        from,
        to,
        detected_ms,
    )
    .await
}

/// Stores a promotion of `kind` of `shard` from `from` to `to` that took `took_ms`
/// (a failover: since the primary first failed a check; a switchover: as its command
/// measured), unless the map no longer names `from`: the new map, or None.
pub async fn store(
    settings: &ClusterSettings,
    kind: PromotionKind,
    shard: ShardId,
    from: &str,
    to: &str,
    took_ms: u64,
) -> Result<Option<ShardMap>, MapError> {
    let mut conn = meta::connect(settings).await?;
    let map = meta::load(&mut conn.client)
        .await?
        .ok_or(MapError::NotInitialised)?;
    if map
        .shards
        .get(shard.index())
        .is_none_or(|e| e.primary != from)
    {
        return Ok(None);
    }
    let next = promoted(&map, shard, from, to)?;
    let entry = &next.shards[shard.index()];
    let planned = planned::asked_by(&conn.client, shard).await?;
    let tx = meta::begin_at(&mut conn.client, map.version).await?;
    tx.execute(
        "UPDATE map_shards SET primary_addr = $2, replicas = $3, term = $4 WHERE id = $1",
        &[
            &(shard.0 as i32),
            &entry.primary,
            &entry.replicas,
            &(entry.term as i64),
        ],
    )
    .await?;
    let term = entry.term;
    // A switchover under way (its command holds the lock) is recorded as one, whoever
    // sees the promotion first.
    let recorder = match kind {
        PromotionKind::Failover => format!("gateway@{}", meta::host_name()),
        PromotionKind::Switchover => meta::actor(),
    };
    let kind = match planned {
        Some(_) => PromotionKind::Switchover,
        None => kind,
    };
    let (summary, detail) = match kind {
        PromotionKind::Failover => (
            format!("{shard} failed over from {from} to {to}, term {term} (seen {took_ms} ms after the primary first failed a check)"),
            serde_json::json!({
                "shard": shard.0, "from": from, "to": to, "term": term, "detected_ms": took_ms,
            }),
        ),
        PromotionKind::Switchover => {
            let by = planned.unwrap_or_else(|| recorder.clone());
            (
                format!("{shard} switched over from {from} to {to}, term {term} (planned, asked by {by})"),
                serde_json::json!({
                    "shard": shard.0, "from": from, "to": to, "term": term, "took_ms": took_ms,
                    "planned_by": by,
                }),
            )
        }
    };
    meta::finish(
        tx,
        next.version,
        (&recorder, kind.as_str(), &summary, detail),
    )
    .await?;
    Ok(Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shard_manager::live_map::shard_map::three_shards;

    #[test]
    fn the_promoted_replica_leads_and_the_old_primary_follows_one_term_later() {
        let mut map = three_shards();
        map.shards[1].replicas = vec!["r1a".into(), "r1b".into()];
        let old = map.shards[1].primary.clone();
        let next = promoted(&map, ShardId(1), &old, "r1b").unwrap();
        assert_eq!(next.version.0, map.version.0 + 1);
        let e = &next.shards[1];
        assert_eq!(e.primary, "r1b");
        assert_eq!(e.replicas, vec!["r1a".to_string(), old]);
        assert_eq!(e.term, map.shards[1].term + 1);
        assert_eq!(next.shards[0], map.shards[0]);
        assert_eq!(next.owners, map.owners);
    }

    #[test]
    fn a_stale_from_or_a_stranger_is_refused() {
        let map = three_shards();
        let old = map.shards[1].primary.clone();
        let replica = map.shards[1].replicas[0].clone();
        let e = promoted(&map, ShardId(1), "elsewhere:1", &replica).unwrap_err();
        assert!(e.to_string().contains("not elsewhere:1"), "{e}");
        let e = promoted(&map, ShardId(1), &old, "stranger:9").unwrap_err();
        assert!(e.to_string().contains("stranger:9 is not a replica"), "{e}");
        assert!(promoted(&map, ShardId(7), &old, &replica).is_err());
    }
}
