//! `shard-admin remove-shard`'s map change: a shard whose slots have all moved away
//! is retired. It stays in the map (shard ids are positions) but owns no slot and takes
//! none: planners skip it, gateways neither route to it nor count it in their health,
//! and its servers can be stopped.

use super::meta;
use super::MapError;
use shard_manager::config::ClusterSettings;
use shard_manager::live_map::shard_map::ShardMap;
use shard_manager::routing::{MapVersion, ShardId, Strategy};

/// Whether `shard` can be removed from `map`: it exists, is not retired yet, another
/// shard stays to take its slots, and the strategy moves slots (`slots`).
pub fn check(map: &ShardMap, shard: ShardId) -> Result<(), MapError> {
    if map.routing.strategy != Strategy::Slots {
        return Err(MapError::Invalid(format!(
            "remove-shard needs the `slots` strategy (this map uses `{}`)",
            map.routing.strategy
        )));
    }
    let entry = map.shards.get(shard.index()).ok_or_else(|| {
        MapError::Invalid(format!(
            "{shard} does not exist: the map has shards 0 to {}",
            map.shards.len().saturating_sub(1)
        ))
    })?;
    if entry.retired {
        return Err(MapError::Invalid(format!("{shard} is already retired")));
    }
    if !map.shards.iter().any(|s| s.id != shard && !s.retired) {
        return Err(MapError::Invalid(format!(
            "{shard} is the last active shard: add another before removing it"
        )));
    }
    Ok(())
}

/// Retires `shard`, which must own no slot any more; the new map.
pub async fn retire(settings: &ClusterSettings, shard: ShardId) -> Result<ShardMap, MapError> {
    let mut conn = super::change::open(settings).await?;
    super::change::lock(&conn.client).await?;
    let map = meta::load(&mut conn.client)
        .await?
        .ok_or(MapError::NotInitialised)?;
    check(&map, shard)?;
    let owned = map.slots_of(shard);
    if !owned.is_empty() {
        return Err(MapError::Invalid(format!(
            "{shard} still owns {} slot(s): move them away first",
            owned.len()
        )));
    }
    let mut next = map.clone();
    next.version = MapVersion(map.version.0 + 1);
    next.shards[shard.index()].retired = true;
    let tx = meta::begin_at(&mut conn.client, map.version).await?;
    tx.execute(
        "UPDATE map_shards SET retired = true WHERE id = $1",
        &[&(shard.0 as i32)],
    )
    .await?;
    let entry = &next.shards[shard.index()];
    let summary = format!(
        "{shard} retired (primary {}): it owns no slot; its servers can be stopped",
        entry.primary
    );
    let detail = serde_json::json!({"shard": shard.0});
    let actor = meta::actor();
    meta::finish(tx, next.version, (&actor, "remove-shard", &summary, detail)).await?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shard_manager::live_map::shard_map::three_shards;

    #[test]
    fn only_an_existing_active_shard_with_another_beside_it_can_go() {
        let mut map = three_shards();
        assert!(check(&map, ShardId(1)).is_ok());
        let err = check(&map, ShardId(3)).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        map.shards[1].retired = true;
        let err = check(&map, ShardId(1)).unwrap_err().to_string();
        assert!(err.contains("already retired"), "{err}");
        map.shards[2].retired = true;
        let err = check(&map, ShardId(0)).unwrap_err().to_string();
        assert!(err.contains("last active"), "{err}");
    }
}
