//! `shard-admin add-shard`'s map change: a new shard joins the stored map owning no
//! slot yet (the slots then move to it online, one move per source shard). Gateways
//! following the map add pools for it before any key is routed there; the shard itself
//! is told it owns nothing, so it refuses every key until a move gives it slots.

use super::meta;
use super::ownership;
use super::MapError;
use shard_manager::config::{parse_addr, Balance, ClusterSettings};
use shard_manager::live_map::shard_map::{ShardEntry, ShardMap};
use shard_manager::routing::{MapVersion, ShardId, Strategy};

/// The servers of the shard to add.
#[derive(Debug, Clone)]
pub struct NewShard {
    pub primary: String,
    pub replicas: Vec<String>,
}

/// The stored map with `new` as its last shard, checked: addresses well formed and used
/// by no shard yet, the `slots` strategy (the only one whose keys can move a slot at a
/// time). A retired shard's primary brings that shard back instead (same id, these
/// replicas): one server is never two shards. The map and the shard's id.
pub fn with_shard(map: &ShardMap, new: &NewShard) -> Result<(ShardMap, ShardId), MapError> {
    if map.routing.strategy != Strategy::Slots {
        return Err(MapError::Invalid(format!(
            "add-shard needs the `slots` strategy (this map uses `{}`, where a new shard would re-place most keys at once)",
            map.routing.strategy
        )));
    }
    let back = map
        .shards
        .iter()
        .find(|s| s.retired && s.primary == new.primary)
        .map(|s| s.id);
    let used: Vec<&String> = map
        .shards
        .iter()
        .filter(|s| Some(s.id) != back)
        .flat_map(|s| std::iter::once(&s.primary).chain(&s.replicas))
        .collect();
    for addr in std::iter::once(&new.primary).chain(&new.replicas) {
        parse_addr(addr).map_err(|e| {
            MapError::Invalid(format!("{:?}: {e}", shard_manager::redact::redact(addr)))
        })?;
        if used.contains(&addr) {
            return Err(MapError::Invalid(format!(
                "{addr} already serves a shard of the map"
            )));
        }
    }
    if new.replicas.contains(&new.primary) {
        return Err(MapError::Invalid(format!(
            "{} cannot be both the primary and a replica",
            new.primary
        )));
    }
    let mut next = map.clone();
    next.version = MapVersion(map.version.0 + 1);
    if let Some(id) = back {
        let entry = &mut next.shards[id.index()];
        entry.retired = false;
        entry.replicas = new.replicas.clone();
        return Ok((next, id));
    }
    next.shards.push(ShardEntry {
        id: ShardId(map.shards.len() as u32),
        primary: new.primary.clone(),
        replicas: new.replicas.clone(),
        balance: Balance::default(),
        read_primary: false,
        follow: Default::default(),
        retired: false,
        term: 1,
        identity: None,
    });
    Ok((next, ShardId(map.shards.len() as u32)))
}

/// Adds `new` to the stored map (its schema must be applied first), or brings back the
/// retired shard it was: tells it it owns nothing, then stores the next version. The
/// new map and the shard's id.
pub async fn add_shard(
    settings: &ClusterSettings,
    new: &NewShard,
) -> Result<(ShardMap, ShardId), MapError> {
    let mut conn = super::change::open(settings).await?;
    super::change::lock(&conn.client).await?;
    let map = meta::load(&mut conn.client)
        .await?
        .ok_or(MapError::NotInitialised)?;
    let (next, id) = with_shard(&map, new)?;
    ownership::tell(settings, &next, id).await?;
    let tx = meta::begin_at(&mut conn.client, map.version).await?;
    let entry = &next.shards[id.index()];
    let verb = if id.index() < map.shards.len() {
        tx.execute(
            "UPDATE map_shards SET retired = false, replicas = $2 WHERE id = $1",
            &[&(id.0 as i32), &entry.replicas],
        )
        .await?;
        "back from retirement"
    } else {
        meta::insert_shard(&tx, entry, next.version).await?;
        "added"
    };
    let summary = format!(
        "{id} {verb}: primary {}, replicas [{}]; no slots yet",
        entry.primary,
        entry.replicas.join(", ")
    );
    let detail =
        serde_json::json!({"shard": id.0, "primary": entry.primary, "replicas": entry.replicas});
    let actor = meta::actor();
    meta::finish(tx, next.version, (&actor, "add-shard", &summary, detail)).await?;
    Ok((next, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shard_manager::live_map::shard_map::three_shards;

    fn new(primary: &str, replicas: &[&str]) -> NewShard {
        NewShard {
            primary: primary.into(),
            replicas: replicas.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn a_new_shard_is_the_last_owning_nothing_one_version_on() {
        let map = three_shards();
        let (next, id) = with_shard(&map, &new("10.0.0.9:5432", &["10.0.0.10:5432"])).unwrap();
        assert_eq!(id, ShardId(3));
        assert_eq!(next.version, MapVersion(map.version.0 + 1));
        assert_eq!(next.shards.len(), 4);
        assert_eq!(next.shards[3].id, ShardId(3));
        assert_eq!(next.owners, map.owners, "no slot changes hands");
    }

    #[test]
    fn addresses_in_use_or_malformed_are_refused() {
        let map = three_shards();
        let taken = map.shards[1].primary.clone();
        let err = with_shard(&map, &new(&taken, &[])).unwrap_err().to_string();
        assert!(err.contains("already serves"), "{err}");
        let err = with_shard(&map, &new("nohost", &[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("host:port"), "{err}");
        let err = with_shard(&map, &new("10.0.0.9:1", &["10.0.0.9:1"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("both"), "{err}");
    }

    #[test]
    fn a_retired_shard_s_primary_brings_that_shard_back() {
        let mut map = three_shards();
        map.shards[1].retired = true;
        let primary = map.shards[1].primary.clone();
        let (next, id) = with_shard(&map, &new(&primary, &["10.0.0.11:5432"])).unwrap();
        assert_eq!(id, ShardId(1));
        assert_eq!(next.shards.len(), 3, "no second entry for one server");
        assert!(!next.shards[1].retired);
        assert_eq!(next.shards[1].replicas, vec!["10.0.0.11:5432".to_string()]);
    }
}
