//! Live gateways: each one says every heartbeat where it listens, which map version it
//! routes with, which binary it runs and which cache prefix it reads under; the others
//! list those heard from recently.

use tokio_postgres::Client;

use super::MapError;
use shard_manager::live_map::GatewayInfo;
use shard_manager::routing::MapVersion;

/// Who this gateway is, fixed for its life.
#[derive(Debug, Clone)]
pub struct Identity {
    pub id: uuid::Uuid,
    pub address: String,
    pub host: String,
    pub pid: u32,
    pub binary_version: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// The cache key prefix it reads under, when its cache is on.
    pub cache_prefix: Option<String>,
}

impl Identity {
    /// A new identity for a gateway listening on `address`.
    pub fn new(address: String) -> Self {
        Self {
            id: uuid::Uuid::new_v4(),
            address,
            host: super::meta::host_name(),
            pid: std::process::id(),
            binary_version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: chrono::Utc::now(),
            cache_prefix: None,
        }
    }

    /// The same identity, reading its cache under `cache`'s prefix when it is on.
    pub fn with_cache(mut self, cache: &shard_manager::config::CacheSettings) -> Self {
        self.cache_prefix = cache.enabled.then(|| cache.prefix.clone());
        self
    }
}

/// Records that `me` is alive and routes with `version`.
pub async fn heartbeat(
    client: &Client,
    me: &Identity,
    version: MapVersion,
) -> Result<(), MapError> {
    client
        .execute(
            "INSERT INTO gateways (id, address, host, pid, binary_version, map_version, started_at, cache_prefix, seen_at)
             VALUES ($1::text::uuid, $2, $3, $4, $5, $6, $7::text::timestamptz, $8, now())
             ON CONFLICT (id) DO UPDATE SET map_version = excluded.map_version, seen_at = now()",
            &[
                &me.id.to_string(),
                &me.address,
                &me.host,
                &(me.pid as i32),
                &me.binary_version,
                &(version.0 as i64),
                &me.started_at.to_rfc3339(),
                &me.cache_prefix,
            ],
        )
        .await
        .map_err(MapError::from_query)?;
    Ok(())
}

/// Gateways heard from within `ttl_ms`, by address; older rows are deleted now and then.
pub async fn live(client: &Client, ttl_ms: u64) -> Result<Vec<GatewayInfo>, MapError> {
    let ttl = ttl_ms as f64;
    client
        .execute(
            "DELETE FROM gateways WHERE seen_at < now() - make_interval(secs => $1::float8 * 100 / 1000)",
            &[&ttl],
        )
        .await
        .map_err(MapError::from_query)?;
    let rows = client
        .query(
            "SELECT id::text, address, host, pid, binary_version, map_version,
                    (extract(epoch FROM now() - seen_at) * 1000)::bigint
               FROM gateways
              WHERE seen_at >= now() - make_interval(secs => $1::float8 / 1000)
              ORDER BY address, id",
            &[&ttl],
        )
        .await
        .map_err(MapError::from_query)?;
    Ok(rows
        .iter()
        .map(|r| GatewayInfo {
            id: r.get(0),
            address: r.get(1),
            host: r.get(2),
            pid: r.get::<_, i32>(3) as u32,
            binary_version: r.get(4),
            map_version: r.get::<_, i64>(5) as u64,
            seen_ms_ago: r.get::<_, i64>(6).max(0) as u64,
        })
        .collect())
}

/// The `application_name` of a gateway's fence connection (`txn::fence`): how the
/// gateways find the fence sessions of one that dropped out of the list.
pub fn fence_session_name(gateway: &uuid::Uuid) -> String {
    format!("shardgate fence {gateway}")
}

/// Ends the fence sessions of every gateway that dropped out of the live list (not
/// heard from within `ttl_ms`, its row not yet deleted): a gateway frozen (SIGSTOP, a
/// paused VM) or cut off while it held the fence holds it no longer than this. A
/// gateway never listed is not touched. Answers how many sessions it ended.
pub async fn end_fences_of_the_gone(client: &Client, ttl_ms: u64) -> Result<u64, MapError> {
    let ttl = ttl_ms as f64;
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(a.pid))
               FROM pg_stat_activity a
               JOIN gateways g ON a.application_name = 'shardgate fence ' || g.id::text
              WHERE a.datname = current_database()
                AND g.seen_at < now() - make_interval(secs => $1::float8 / 1000)",
            &[&ttl],
        )
        .await
        .map_err(MapError::from_query)?;
    Ok(row.get::<_, i64>(0).max(0) as u64)
}

/// Every cache key prefix a gateway still listed reads under (live or not: one that lost
/// the metadata database keeps serving its cache with the map it had).
pub async fn cache_prefixes(client: &Client) -> Result<Vec<String>, MapError> {
    let rows = client
        .query(
            "SELECT DISTINCT cache_prefix FROM gateways WHERE cache_prefix IS NOT NULL ORDER BY 1",
            &[],
        )
        .await
        .map_err(MapError::from_query)?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
