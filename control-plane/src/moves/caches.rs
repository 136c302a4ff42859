//! The caches' side of a move: a shard whose slots change hands gets a new cache epoch,
//! and every cache in use hears that the old one is retired before anyone could need it
//! to be.
//!
//! - As a move starts, the **target**'s epoch is raised: entries it holds from an earlier
//!   time it owned these slots are abandoned before it owns them again.
//! - Under the fence, the **source**'s epoch is raised in the switching transaction; the
//!   mover tells the caches after that commit and before it stores the next map. Until
//!   then no gateway acknowledges a write to the slots on the target (they wait for the
//!   stored map); from then on no gateway serves the source's old entries, even one that
//!   still routes with the old map.
//!
//! Telling a cache is setting its retired-epoch marker (`shard_manager::cache::retire`)
//! under every key prefix a listed gateway reads under (`map::gateways`). If Redis does
//! not answer, the mover waits instead until every gateway has read the raised epoch from
//! the shard or stopped trusting its last reading (one check interval plus one check
//! timeout, see `cache::epochs`).

use std::time::Duration;

use tokio_postgres::Client;

use super::shard_conn::ShardConn;
use super::MoveError;
use crate::map::gateways;
use shard_manager::config::ClusterSettings;
use shard_manager::routing::ShardId;

/// How the caches learnt that an epoch was retired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Told {
    /// No gateway reads a cache.
    NoCache,
    /// Every prefix's marker was set.
    Redis,
    /// Redis did not answer (the reason); the mover waited out the gateways' readings.
    Waited(String),
}

impl std::fmt::Display for Told {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Told::NoCache => write!(f, "no gateway reads a cache"),
            Told::Redis => write!(f, "told to Redis under every prefix"),
            Told::Waited(why) => write!(
                f,
                "Redis did not answer ({why}); waited until no gateway reads the old epoch"
            ),
        }
    }
}

/// Raises `shard`'s cache epoch on its primary (in the transaction open on `conn`, if
/// any): the new epoch.
pub async fn raise(conn: &ShardConn) -> Result<u64, MoveError> {
    let rows = conn
        .client
        .query(
            "UPDATE shardgate_cache SET epoch = epoch + 1 RETURNING epoch",
            &[],
        )
        .await
        .map_err(conn.fail("raising its cache epoch"))?;
    Ok(rows.first().map_or(0, |r| r.get::<_, i64>(0).max(0) as u64))
}

/// `shard`'s stored cache epoch.
pub async fn current(conn: &ShardConn) -> Result<u64, MoveError> {
    let rows = conn
        .client
        .query("SELECT epoch FROM shardgate_cache", &[])
        .await
        .map_err(conn.fail("reading its cache epoch"))?;
    Ok(rows.first().map_or(0, |r| r.get::<_, i64>(0).max(0) as u64))
}

/// Tells every cache in use that `shard`'s epochs below `live` are retired, or waits
/// until no gateway can still read them (see the module doc).
pub async fn retire(
    settings: &ClusterSettings,
    meta: &Client,
    shard: ShardId,
    live: u64,
) -> Result<Told, MoveError> {
    let mut prefixes = gateways::cache_prefixes(meta).await?;
    if settings.cache.enabled && !prefixes.contains(&settings.cache.prefix) {
        prefixes.push(settings.cache.prefix.clone());
    }
    if prefixes.is_empty() {
        return Ok(Told::NoCache);
    }
    let timeout = Duration::from_millis(settings.cache.timeout_ms.max(1000));
    match shard_manager::cache::retire(&settings.cache.url, &prefixes, shard, live, timeout).await {
        Ok(()) => Ok(Told::Redis),
        Err(why) => {
            tracing::warn!(%shard, reason = %why, "could not tell the caches of a retired epoch; waiting out the gateways' readings");
            let replication = &settings.replication;
            tokio::time::sleep(
                replication.check_interval() + Duration::from_millis(replication.check_timeout_ms),
            )
            .await;
            Ok(Told::Waited(why))
        }
    }
}

/// A move's start: the target's old entries abandoned (its epoch raised and retired).
/// A crash meanwhile resumes in the same phase, which raises and tells again.
pub async fn abandon_target(
    settings: &ClusterSettings,
    meta: &Client,
    target: &ShardConn,
) -> Result<Told, MoveError> {
    let live = raise(target).await?;
    retire(settings, meta, target.shard, live).await
}
