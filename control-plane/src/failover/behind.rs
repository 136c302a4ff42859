//! The failover watcher's round for a shard behind a service address (`follow =
//! "address"`, [`round`]). There the map's servers never change: the address stays, and
//! its HA manager (CloudNativePG, Patroni behind HAProxy, a managed service) moves what
//! it leads to. What says a promotion happened is the server itself: a writable primary
//! on a higher timeline than the one the map recorded (every promotion starts a higher
//! one; `shard_manager::store::identity`).
//!
//! Each round, for each such shard whose primary's identity the map has recorded:
//! - **probe:** while the primary fails its health checks, and at least every
//!   [`PROBE_EVERY`] otherwise, one fresh connection is opened through the address
//!   (never a pooled one: a pooled connection stays on the node it reached when it
//!   opened) and its server judged as the pool judges every new connection
//!   (`shard_manager::wire::behind`): a primary on a higher timeline raises this
//!   gateway's floor, which retires its connections to the old one.
//! - **record:** when this gateway's floor is above the recorded timeline and the last
//!   connection through the address reached a writable primary on it, the promotion is
//!   stored in the map ([`record::promote_behind`]: the new identity, the term one
//!   higher, a `failover` history line naming both nodes). The first gateway to see it
//!   stores it; the others find it stored, and every gateway adopting that map version
//!   raises its floor to the recorded timeline.
//! - **fence:** a probe that reaches a writable server of the same cluster on a
//!   timeline below the floor (an old primary the address still leads to: split brain)
//!   fences it through that very connection ([`fence::disown_on`]): it owns no slot
//!   from then on, so every gateway's write there is refused (SG001), whatever the
//!   gateway knows.
//!
//! A standby behind the address (the HA manager has not promoted yet) and another
//! cluster or shard (never followed until an operator adopts it) are said once each
//! time they start.

use std::time::{Duration, Instant};

use super::{fence, identity, record};
use shard_manager::cluster::{Cluster, Shard};
use shard_manager::store::identity::{verdict, Identity, Seen, Verdict};
use shard_manager::wire::Behind;

/// How often the address of a shard whose primary passes its checks is probed with a
/// fresh connection: a failover the pooled connections did not run into (the old
/// primary still answers them) is seen within this, plus a round.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);

/// What the watcher remembers of one shard behind an address between rounds.
#[derive(Debug, Default)]
pub struct Memory {
    /// When the primary was first seen failing its checks, this time.
    lost_since: Option<Instant>,
    /// When the address was last probed.
    probed_at: Option<Instant>,
    /// The last verdict said, so a lasting one is said once.
    said: Option<Verdict>,
}

/// One round for `shard` (see the module doc).
pub async fn round(cluster: &Cluster, shard: &Shard, memory: &mut Memory) {
    let Some(behind) = shard.primary.behind.as_deref() else {
        return;
    };
    // Until the map has an identity (the health monitor records the first), there is
    // nothing to compare with.
    let Some(recorded) = behind.recorded() else {
        return;
    };
    let unwell = shard.primary.stats().condition.down_reason.is_some();
    if unwell {
        memory.lost_since.get_or_insert_with(Instant::now);
    }
    if unwell || memory.probed_at.is_none_or(|t| t.elapsed() >= PROBE_EVERY) {
        memory.probed_at = Some(Instant::now());
        probe(cluster, shard, behind, &recorded, memory).await;
    }
    match promotion(behind) {
        Some(to) => store(cluster, shard, &recorded, &to, memory).await,
        None if !unwell => memory.lost_since = None,
        None => {}
    }
}

/// The primary on a higher timeline than the recorded one that this gateway reached
/// through the address (by a probe or a new pooled connection), if the last connection
/// through it reached one writable on the floor.
pub fn promotion(behind: &Behind) -> Option<Identity> {
    let recorded = behind.recorded()?;
    let floor = behind.floor();
    let (seen, _) = behind.last_seen()?;
    let newer = floor > recorded.timeline
        && seen.identity.timeline == floor
        && verdict(&recorded, &seen) == Verdict::Newer;
    newer.then_some(seen.identity)
}

/// Whether a server `seen` through the address is an old primary that must be fenced:
/// the same cluster and shard as the `recorded` primary, taking writes, on a timeline
/// below `floor` (pure).
pub fn is_old_primary(recorded: &Identity, seen: &Seen, floor: u32) -> bool {
    verdict(recorded, seen) != Verdict::Elsewhere
        && seen.writable()
        && seen.identity.timeline < floor
}

async fn probe(
    cluster: &Cluster,
    shard: &Shard,
    behind: &Behind,
    recorded: &Identity,
    memory: &mut Memory,
) {
    let settings = cluster.settings();
    let address = &shard.primary.addr;
    let (mut conn, seen) = match identity::open(settings, address).await {
        Ok(found) => found,
        Err(e) => {
            tracing::debug!(shard = %shard.id, %address, error = %e, "probing the address: no server answered");
            return;
        }
    };
    let found = verdict(recorded, &seen);
    let node = seen.identity.node.clone().unwrap_or_else(|| "?".into());
    // As the pool judges a new connection: a newer timeline raises the floor.
    let _ = behind.judge(seen.clone());
    let floor = behind.floor();
    let first = memory.said != Some(found);
    memory.said = Some(found);
    if is_old_primary(recorded, &seen, floor) {
        let version = cluster.map().version();
        let limit = settings.database.connect_timeout() + Duration::from_secs(1);
        let fenced = tokio::time::timeout(
            limit,
            fence::disown_on(&mut conn, shard.id, address, version),
        )
        .await;
        match fenced {
            Ok(Ok(Some(slots))) if slots > 0 => {
                tracing::warn!(shard = %shard.id, %address, %node, timeline = seen.identity.timeline, floor, slots, %version, "an old primary the address still leads to takes writes (split brain): fenced through that connection, it owns no slot");
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(shard = %shard.id, %address, %node, error = %e, "could not fence the old primary behind the address (tried again next probe)");
            }
            Err(_) => {
                tracing::warn!(shard = %shard.id, %address, %node, "fencing the old primary behind the address took over {} ms (tried again next probe)", limit.as_millis());
            }
        }
        return;
    }
    if !first {
        return;
    }
    match found {
        Verdict::NotWritable => {
            tracing::warn!(shard = %shard.id, %address, %node, "the address leads to a server that takes no writes; waiting for its HA manager to promote one")
        }
        Verdict::Elsewhere => {
            tracing::error!(shard = %shard.id, %address, %node, "the address leads to another cluster or shard than the recorded primary: no write goes there until an operator adopts it")
        }
        Verdict::Same | Verdict::Newer | Verdict::Stale => {}
    }
}

async fn store(
    cluster: &Cluster,
    shard: &Shard,
    from: &Identity,
    to: &Identity,
    memory: &mut Memory,
) {
    let settings = cluster.settings();
    let address = &shard.primary.addr;
    let detected_ms = memory
        .lost_since
        .map_or(0, |t| t.elapsed().as_millis() as u64);
    match record::promote_behind(settings, shard.id, address, from, to, detected_ms).await {
        Ok(Some(map)) => {
            let term = map.shards[shard.id.index()].term;
            tracing::warn!(shard = %shard.id, %address, from = ?from.node, to = ?to.node, timeline = to.timeline, term, version = %map.version, "failover behind the address recorded in the map");
            memory.lost_since = None;
            cluster.map().refresh(map.version).await;
        }
        // Another gateway stored it first: the map brings it.
        Ok(None) => cluster.map().wake().notify_one(),
        // This gateway's writes already go only to the new primary (its floor); the
        // others learn it from the map once it is stored.
        Err(e) => {
            tracing::warn!(shard = %shard.id, %address, error = %e, "could not record the failover behind the address (tried again next round)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(timeline: u32, writable: bool, system: &str) -> Seen {
        Seen {
            identity: Identity {
                timeline,
                system_identifier: Some(system.into()),
                node: Some(format!("10.0.0.{timeline}:5432")),
                shard: Some(0),
            },
            in_recovery: !writable,
            read_only: !writable,
            synchronous: true,
        }
    }

    #[test]
    fn a_writable_primary_on_the_floor_above_the_record_is_a_promotion() {
        let behind = Behind::default();
        behind.record(seen(3, true, "77").identity);
        assert_eq!(promotion(&behind), None, "nothing seen yet");
        behind.judge(seen(3, true, "77")).unwrap();
        assert_eq!(promotion(&behind), None, "the recorded primary");
        behind.judge(seen(4, false, "77")).unwrap_err();
        assert_eq!(promotion(&behind), None, "a standby");
        behind.judge(seen(4, true, "77")).unwrap();
        assert_eq!(promotion(&behind), Some(seen(4, true, "77").identity));
        // Once the map records it, nothing more to store.
        behind.record(seen(4, true, "77").identity);
        assert_eq!(promotion(&behind), None);
    }

    #[test]
    fn a_floor_raised_without_a_primary_seen_on_it_stores_nothing() {
        let behind = Behind::default();
        behind.record(seen(3, true, "77").identity);
        behind.judge(seen(3, true, "77")).unwrap();
        behind.raise_floor(4);
        assert_eq!(promotion(&behind), None);
    }

    #[test]
    fn only_a_writable_server_of_the_same_cluster_below_the_floor_is_fenced() {
        let recorded = seen(4, true, "77").identity;
        assert!(is_old_primary(&recorded, &seen(3, true, "77"), 4));
        assert!(
            !is_old_primary(&recorded, &seen(4, true, "77"), 4),
            "the primary"
        );
        assert!(
            !is_old_primary(&recorded, &seen(3, false, "77"), 4),
            "a standby"
        );
        assert!(
            !is_old_primary(&recorded, &seen(3, true, "1"), 4),
            "another cluster"
        );
        // Below a floor this gateway raised before the map recorded it.
        assert!(is_old_primary(
            &seen(3, true, "77").identity,
            &seen(3, true, "77"),
            4
        ));
    }
}
