//! A promotion stored in the map: the shard's new primary, the old one listed as a
//! replica (it comes back as one, rewound or re-cloned by the HA manager), the term
//! raised, a `failover` (or, planned, `switchover`) line in `map history` (`switchover` whenever a planned one is under way:
//! [`super::planned`], whoever records it) whose detail
//! holds `shard`, `from`, `to`, `term` and how long it took (`map::promotions` reads
//! them for gateways to show). Conditional on the map still naming the old primary, so
//! when several gateways see the same promotion one stores it and the others find it
//! done.
//!
//! Behind a service address ([`promote_behind`]) the servers stay (the address is the
//! same); the map records the new primary's identity instead (its timeline and node),
//! raises the term, and writes the same `failover` line with the nodes as `from` and
//! `to` and the `address` beside them. Conditional on the map still recording the old
//! timeline.

use super::planned;
use crate::map::{meta, MapError};
use shard_manager::config::ClusterSettings;
use shard_manager::live_map::shard_map::ShardMap;
use shard_manager::live_map::PromotionKind;
use shard_manager::routing::{MapVersion, ShardId};
use shard_manager::store::identity::Identity;

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

/// The map after a failover behind `shard`'s address (pure): `to` the recorded
/// identity (keeping the recorded system identifier where `to` could not read one),
/// the term one higher, the servers as they were.
pub fn promoted_behind(
    map: &ShardMap,
    shard: ShardId,
    from: &Identity,
    to: &Identity,
) -> Result<ShardMap, MapError> {
    let entry = map
        .shards
        .get(shard.index())
        .ok_or_else(|| MapError::Invalid(format!("{shard} is not in the map")))?;
    let recorded = entry.identity.as_ref().map(|i| i.timeline);
    if recorded != Some(from.timeline) {
        return Err(MapError::Invalid(format!(
            "{shard}'s recorded primary is on timeline {}, not {}",
            recorded.map_or_else(|| "none".into(), |t| t.to_string()),
            from.timeline
        )));
    }
    if to.timeline <= from.timeline {
        return Err(MapError::Invalid(format!(
            "{shard}: timeline {} does not follow timeline {}",
            to.timeline, from.timeline
        )));
    }
    let mut next = map.clone();
    next.version = MapVersion(map.version.0 + 1);
    let e = &mut next.shards[shard.index()];
    let mut identity = to.clone();
    if identity.system_identifier.is_none() {
        identity.system_identifier = from.system_identifier.clone();
    }
    identity.shard = Some(shard.0);
    e.identity = Some(identity);
    e.term += 1;
    Ok(next)
}

/// A node as a history line names it: `host:port`, or its timeline where the server
/// could not say (a Unix socket).
fn node(identity: &Identity) -> String {
    identity
        .node
        .clone()
        .unwrap_or_else(|| format!("timeline {}", identity.timeline))
}

/// Stores the failover of `shard` behind its `address` from the primary recorded as
/// `from` to the one seen as `to`, `detected_ms` after the primary first failed a
/// check, unless the map no longer records `from`'s timeline (stored already, by
/// another gateway): the new map, or None.
pub async fn promote_behind(
    settings: &ClusterSettings,
    shard: ShardId,
    address: &str,
    from: &Identity,
    to: &Identity,
    detected_ms: u64,
) -> Result<Option<ShardMap>, MapError> {
    let mut conn = meta::connect(settings).await?;
    let map = meta::load(&mut conn.client)
        .await?
        .ok_or(MapError::NotInitialised)?;
    let recorded = map
        .shards
        .get(shard.index())
        .and_then(|e| e.identity.as_ref());
    if recorded.is_none_or(|r| r.timeline != from.timeline) {
        return Ok(None);
    }
    let next = promoted_behind(&map, shard, from, to)?;
    let entry = &next.shards[shard.index()];
    let identity = entry.identity.as_ref().unwrap_or(to);
    let tx = meta::begin_at(&mut conn.client, map.version).await?;
    tx.execute(
        "UPDATE map_shards SET timeline = $2, system_identifier = $3, node = $4, term = $5
          WHERE id = $1",
        &[
            &(shard.0 as i32),
            &(identity.timeline as i32),
            &identity.system_identifier,
            &identity.node,
            &(entry.term as i64),
        ],
    )
    .await?;
    let (term, from_node, to_node) = (entry.term, node(from), node(identity));
    let summary = format!(
        "{shard} failed over behind {address} from {from_node} (timeline {}) to {to_node} \
         (timeline {}), term {term} (seen {detected_ms} ms after the primary first failed a check)",
        from.timeline, identity.timeline
    );
    let detail = serde_json::json!({
        "shard": shard.0, "from": from_node, "to": to_node, "term": term,
        "detected_ms": detected_ms, "address": address,
        "from_timeline": from.timeline, "to_timeline": identity.timeline,
    });
    let recorder = format!("gateway@{}", meta::host_name());
    let kind = PromotionKind::Failover.as_str();
    meta::finish(tx, next.version, (&recorder, kind, &summary, detail)).await?;
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

    fn identity(timeline: u32, node: &str, system: Option<&str>) -> Identity {
        Identity {
            timeline,
            system_identifier: system.map(str::to_owned),
            node: Some(node.into()),
            shard: Some(1),
        }
    }

    #[test]
    fn behind_an_address_the_servers_stay_and_the_identity_and_term_move_on() {
        let mut map = three_shards();
        let old = identity(3, "10.0.0.7:5432", Some("77"));
        map.shards[1].identity = Some(old.clone());
        let servers = (
            map.shards[1].primary.clone(),
            map.shards[1].replicas.clone(),
        );
        let next = promoted_behind(&map, ShardId(1), &old, &identity(4, "10.0.0.8:5432", None))
            .expect("promoted");
        assert_eq!(next.version.0, map.version.0 + 1);
        let e = &next.shards[1];
        assert_eq!((e.primary.clone(), e.replicas.clone()), servers);
        assert_eq!(e.term, map.shards[1].term + 1);
        assert_eq!(
            e.identity,
            Some(identity(4, "10.0.0.8:5432", Some("77"))),
            "the system identifier kept where the new node could not read it"
        );
        assert_eq!(next.shards[0], map.shards[0]);
    }

    #[test]
    fn behind_an_address_a_stale_record_or_an_older_timeline_is_refused() {
        let mut map = three_shards();
        map.shards[1].identity = Some(identity(5, "a:1", None));
        let e = promoted_behind(
            &map,
            ShardId(1),
            &identity(3, "a:1", None),
            &identity(6, "b:1", None),
        )
        .unwrap_err();
        assert!(e.to_string().contains("on timeline 5, not 3"), "{e}");
        let e = promoted_behind(
            &map,
            ShardId(1),
            &identity(5, "a:1", None),
            &identity(5, "b:1", None),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("timeline 5 does not follow timeline 5"),
            "{e}"
        );
        map.shards[1].identity = None;
        let e = promoted_behind(
            &map,
            ShardId(1),
            &identity(5, "a:1", None),
            &identity(6, "b:1", None),
        )
        .unwrap_err();
        assert!(e.to_string().contains("on timeline none"), "{e}");
    }
}
