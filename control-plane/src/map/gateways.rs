//! Live gateways: each one says every heartbeat where it listens, which map version it
//! routes with and which binary it runs; the others list those heard from recently.

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
        }
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
            "INSERT INTO gateways (id, address, host, pid, binary_version, map_version, started_at, seen_at)
             VALUES ($1::text::uuid, $2, $3, $4, $5, $6, $7::text::timestamptz, now())
             ON CONFLICT (id) DO UPDATE SET map_version = excluded.map_version, seen_at = now()",
            &[
                &me.id.to_string(),
                &me.address,
                &me.host,
                &(me.pid as i32),
                &me.binary_version,
                &(version.0 as i64),
                &me.started_at.to_rfc3339(),
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
