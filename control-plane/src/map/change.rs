//! The admin operations on the map, in the order that keeps every slot owned by at most
//! one shard: `init` (seed once, tell every shard), `assign` (tell the losing shards,
//! then the gaining ones, then store the next version), `sync` (tell every shard the
//! stored map again, after a shard missed a change).

use std::collections::BTreeSet;

use tokio_postgres::Client;

use super::assign::{self, Change};
use super::meta::{self, MetaConn};
use super::ownership::{self, Told};
use super::{schema, MapError};
use shard_manager::config::ClusterSettings;
use shard_manager::live_map::shard_map::ShardMap;
use shard_manager::routing::{MapVersion, ShardId};

/// What `init` did.
#[derive(Debug)]
pub struct Initialised {
    /// False: a map was already stored, and was kept.
    pub seeded: bool,
    pub map: ShardMap,
    /// Where the configuration differs from a map that was kept.
    pub differences: Vec<String>,
    pub told: Vec<Told>,
}

/// What `assign` did.
#[derive(Debug)]
pub struct Assigned {
    pub before: MapVersion,
    /// The stored map afterwards (unchanged when `changes` is empty).
    pub map: ShardMap,
    pub changes: Vec<Change>,
}

/// Connects and applies the metadata migrations.
pub(super) async fn open(settings: &ClusterSettings) -> Result<MetaConn, MapError> {
    let mut conn = meta::connect(settings).await?;
    schema::apply(&mut conn.client).await?;
    Ok(conn)
}

/// Holds the admin lock for the life of the connection (one map command at a time).
pub(super) async fn lock(client: &Client) -> Result<(), MapError> {
    let got: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&schema::ADMIN_LOCK])
        .await?
        .get(0);
    match got {
        true => Ok(()),
        false => Err(MapError::Invalid(
            "another map command is running (it holds the map lock); run this one when it is done"
                .into(),
        )),
    }
}

/// Seeds the map from `settings` unless one is stored, then tells every shard its slots.
pub async fn init(settings: &ClusterSettings) -> Result<Initialised, MapError> {
    let seed = ShardMap::from_settings(settings, MapVersion(1))
        .map_err(|e| MapError::Invalid(e.to_string()))?;
    let mut conn = open(settings).await?;
    lock(&conn.client).await?;
    let seeded = meta::seed(&mut conn.client, &seed, &meta::actor()).await?;
    let map = meta::load(&mut conn.client)
        .await?
        .ok_or(MapError::NotInitialised)?;
    let differences = if seeded {
        Vec::new()
    } else {
        differences(&seed, &map)
    };
    let told = tell_all(settings, &map).await?;
    Ok(Initialised {
        seeded,
        map,
        differences,
        told,
    })
}

/// Tells every shard the stored map.
pub async fn sync(settings: &ClusterSettings) -> Result<(ShardMap, Vec<Told>), MapError> {
    let mut conn = open(settings).await?;
    lock(&conn.client).await?;
    let map = meta::load(&mut conn.client)
        .await?
        .ok_or(MapError::NotInitialised)?;
    let told = tell_all(settings, &map).await?;
    Ok((map, told))
}

/// The stored map (None before `init`).
pub async fn current(settings: &ClusterSettings) -> Result<ShardMap, MapError> {
    let mut conn = meta::connect(settings).await?;
    meta::load(&mut conn.client)
        .await?
        .ok_or(MapError::NotInitialised)
}

/// Gives the slots in `entries` (`SLOTS=SHARD`) to their shards. `all`: the entries are
/// the whole assignment. Checked completely before anything changes.
pub async fn assign(
    settings: &ClusterSettings,
    entries: &[String],
    all: bool,
) -> Result<Assigned, MapError> {
    let mut conn = open(settings).await?;
    lock(&conn.client).await?;
    let map = meta::load(&mut conn.client)
        .await?
        .ok_or(MapError::NotInitialised)?;
    let parsed = assign::parse(entries, &map)?;
    let (next, changes) = assign::apply(&map, &parsed, all)?;
    if changes.is_empty() {
        return Ok(Assigned {
            before: map.version,
            map,
            changes,
        });
    }
    let losing: BTreeSet<ShardId> = changes.iter().map(|c| c.from).collect();
    let gaining: BTreeSet<ShardId> = changes
        .iter()
        .map(|c| c.to)
        .filter(|s| !losing.contains(s))
        .collect();
    let mut told = Vec::new();
    for shard in losing.iter().chain(gaining.iter()) {
        if let Err(e) = ownership::tell(settings, &next, *shard).await {
            roll_back(settings, &map, &told).await;
            return Err(e);
        }
        told.push(*shard);
    }
    let moved: Vec<(u32, ShardId)> = changes.iter().map(|c| (c.slot, c.to)).collect();
    let summary = summary(&changes);
    let detail = serde_json::json!({
        "moved": changes.iter().map(|c| [c.slot, c.from.0, c.to.0]).collect::<Vec<_>>(),
    });
    let stored = meta::commit(
        &mut conn.client,
        map.version,
        &next,
        &moved,
        (&meta::actor(), "assign-slots", &summary, detail),
    )
    .await;
    if let Err(e) = stored {
        roll_back(settings, &map, &told).await;
        return Err(e);
    }
    Ok(Assigned {
        before: map.version,
        map: next,
        changes,
    })
}

/// Puts the shards already told back on `map` (best effort: a shard that cannot be
/// reached is left for `map sync`, and said so).
async fn roll_back(settings: &ClusterSettings, map: &ShardMap, told: &[ShardId]) {
    for shard in told {
        if let Err(e) = ownership::tell(settings, map, *shard).await {
            tracing::error!(%shard, error = %e, "could not put the shard back on {}: run `shard-admin map sync`", map.version);
        }
    }
}

async fn tell_all(settings: &ClusterSettings, map: &ShardMap) -> Result<Vec<Told>, MapError> {
    let mut told = Vec::with_capacity(map.shards.len());
    for shard in &map.shards {
        told.push(ownership::tell(settings, map, shard.id).await?);
    }
    Ok(told)
}

/// "slots 0-99 from shard 0 to shard 1; slot 512 from shard 1 to shard 2".
pub fn summary(changes: &[Change]) -> String {
    let mut pairs: Vec<(ShardId, ShardId)> = changes.iter().map(|c| (c.from, c.to)).collect();
    pairs.sort();
    pairs.dedup();
    let parts: Vec<String> = pairs
        .iter()
        .map(|(from, to)| {
            let slots = changes
                .iter()
                .filter(|c| c.from == *from && c.to == *to)
                .map(|c| c.slot);
            let n = slots.clone().count();
            format!(
                "{n} slot(s) {} from {from} to {to}",
                assign::describe(slots)
            )
        })
        .collect();
    parts.join("; ")
}

/// Where a configuration differs from the stored map (the stored map wins).
fn differences(config: &ShardMap, stored: &ShardMap) -> Vec<String> {
    let mut out = Vec::new();
    if config.routing != stored.routing {
        out.push(format!(
            "[routing] differs (config: strategy {}, {} slots; stored: strategy {}, {} slots)",
            config.routing.strategy,
            config.slot_count(),
            stored.routing.strategy,
            stored.slot_count()
        ));
    }
    if config.tables != stored.tables {
        out.push(format!(
            "[tables] differ (config: {}; stored: {})",
            config.tables.join(", "),
            stored.tables.join(", ")
        ));
    }
    if config.shards != stored.shards {
        out.push(format!(
            "[[shards]] differ (config: {} shards, stored: {})",
            config.shards.len(),
            stored.shards.len()
        ));
    }
    if config.owners != stored.owners && config.routing == stored.routing {
        out.push(format!(
            "slot owners differ: the stored map is at {} after its changes",
            stored.version
        ));
    }
    out
}
