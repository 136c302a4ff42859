//! What a restore does once every server is back at the point.
//!
//! **Cache epochs.** A gateway's Redis cache keys every entry by its shard's cache
//! epoch (`shardgate_cache.epoch` on the shard, see `shard_manager::cache`), and a
//! cached entry is served while its epoch is live. The restore rolled each shard's
//! epoch back to its value at the point, but Redis (and any gateway's memory) may hold
//! entries written after the point under that same epoch, or under the few above it a
//! move took since: served, they would bring back data the restore removed. So each
//! shard's epoch jumps by [`EPOCH_JUMP`] (far past anything reached after the point:
//! a move raises it by one), and every epoch below the new one is retired in Redis under
//! every prefix a listed gateway read under, plus the configured one (the same telling
//! a slot move does: `moves::caches::retire`). Entries from after the point are then
//! dead for every gateway started afterwards.
//!
//! **The map.** The metadata map and each shard's slot ownership are both from the point;
//! they are checked against each other and the result reported (nothing is refused).

use tokio_postgres::Client;

use shard_manager::config::ClusterSettings;
use shard_manager::live_map::ShardMap;
use shard_manager::routing::ShardId;

use crate::backup::error::BackupError;
use crate::backup::point::{self, describe};
use crate::backup::stanza::Target;
use crate::moves::caches::{self, Told};

/// How far a restore moves every shard's cache epoch.
pub const EPOCH_JUMP: i64 = 1_000_000;

/// One shard as the restore left it: its cache epoch raised past the point's, the
/// epochs below retired, and its slots checked against the restored map.
#[derive(Debug)]
pub struct RestoredShard {
    pub shard: ShardId,
    /// The cache epoch at the point, and the one now.
    pub epoch_before: i64,
    pub epoch_now: i64,
    pub caches: Told,
    /// Whether its slot ownership is the metadata map's, and the line saying so.
    pub consistent: bool,
    pub ownership: String,
}

/// Raises every active shard's cache epoch, retires the old ones, and checks each
/// shard's slots against `map` (the restored metadata map).
pub async fn settle(
    settings: &ClusterSettings,
    meta: &Client,
    map: &ShardMap,
) -> Result<Vec<RestoredShard>, BackupError> {
    let mut out = Vec::new();
    for shard in map.shards.iter().filter(|s| !s.retired) {
        let target = Target {
            stanza: format!("shard{}", shard.id.0),
            address: shard.primary.clone(),
            holds_meta: false,
        };
        let conn = point::connect_all(settings, std::slice::from_ref(&target)).await?;
        let client = &conn.0[0].1;
        let fail = |doing: &str| {
            let server = describe(&target);
            let doing = doing.to_owned();
            move |e| BackupError::query(server, &doing, e)
        };
        let row = client
            .query_one(
                "UPDATE shardgate_cache SET epoch = epoch + $1 RETURNING epoch - $1, epoch",
                &[&EPOCH_JUMP],
            )
            .await
            .map_err(fail("raising its cache epoch"))?;
        let (epoch_before, epoch_now): (i64, i64) = (row.get(0), row.get(1));
        let told = caches::retire(settings, meta, shard.id, epoch_now.max(0) as u64)
            .await
            .map_err(|e| BackupError::server(describe(&target), e))?;
        let version: Option<i64> = client
            .query_opt("SELECT version FROM shardgate_map", &[])
            .await
            .map_err(fail("reading its map version"))?
            .map(|r| r.get(0));
        let slots: Vec<i32> = client
            .query_one(
                "SELECT coalesce(array_agg(slot ORDER BY slot), '{}') FROM shardgate_slots",
                &[],
            )
            .await
            .map_err(fail("reading its slots"))?
            .get(0);
        let expected = map.slots_of(shard.id);
        let (consistent, ownership) = compare(
            shard.id,
            map.version.0 as i64,
            &expected,
            version.map(|v| (v, slots)),
        );
        out.push(RestoredShard {
            shard: shard.id,
            epoch_before,
            epoch_now,
            caches: told,
            consistent,
            ownership,
        });
    }
    Ok(out)
}

/// A shard's ownership (the map version it was told, its slots) against the map's:
/// consistent when the slots are the same and it was told no later version.
pub fn compare(
    shard: ShardId,
    map_version: i64,
    expected: &[i32],
    told: Option<(i64, Vec<i32>)>,
) -> (bool, String) {
    let Some((version, slots)) = told else {
        return (
            false,
            format!("{shard}: was never told its slots (run `shard-admin map sync`)"),
        );
    };
    let missing: Vec<i32> = expected
        .iter()
        .filter(|s| slots.binary_search(s).is_err())
        .copied()
        .collect();
    let extra: Vec<i32> = slots
        .iter()
        .filter(|s| expected.binary_search(s).is_err())
        .copied()
        .collect();
    if missing.is_empty() && extra.is_empty() && version <= map_version {
        return (
            true,
            format!(
                "{shard}: owns its {} slot(s), told at map {version}; the metadata map is version {map_version}: consistent",
                slots.len()
            ),
        );
    }
    let some = |v: &[i32]| {
        v.iter()
            .take(5)
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    (
        false,
        format!(
            "{shard}: INCONSISTENT: owns {} slot(s) told at map {version}, the metadata map (version {map_version}) gives it {}: {} missing [{}], {} extra [{}]; run `shard-admin map sync`",
            slots.len(),
            expected.len(),
            missing.len(),
            some(&missing),
            extra.len(),
            some(&extra)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_slots_told_at_an_earlier_or_equal_version_are_consistent() {
        let (ok, line) = compare(ShardId(1), 4, &[1, 2, 3], Some((3, vec![1, 2, 3])));
        assert!(ok, "{line}");
        assert!(line.contains("owns its 3 slot(s), told at map 3"), "{line}");
    }

    #[test]
    fn other_slots_or_a_later_version_are_reported() {
        let (ok, line) = compare(ShardId(0), 4, &[1, 2, 3], Some((4, vec![2, 3, 9])));
        assert!(!ok);
        assert!(line.contains("1 missing [1], 1 extra [9]"), "{line}");
        let (ok, line) = compare(ShardId(0), 4, &[1], Some((5, vec![1])));
        assert!(!ok, "{line}");
        let (ok, line) = compare(ShardId(2), 4, &[1], None);
        assert!(!ok);
        assert!(line.contains("shard-2: was never told"), "{line}");
    }
}
