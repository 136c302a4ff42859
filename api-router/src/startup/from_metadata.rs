//! What a gateway reads from the metadata database as it starts: the shard map, the API
//! keys and the cluster's secret for record ids, read together (with the database down,
//! the start waits for one connect timeout, not three). Whatever does not answer, the
//! gateway starts without: the configuration's map, loopback clients only, records
//! without an id under an idempotency key refused; its followers read them later.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use control_plane::id_secret;
use control_plane::keys::{self, KeyRing};
use control_plane::map::follower;
use shard_manager::store::IdSecret;
use shard_manager::Cluster;

use crate::access::protected;
use crate::server::settings::Settings;

/// What the start read, or what stands in for it.
pub struct Loaded {
    pub cluster: Arc<Cluster>,
    pub ring: Arc<KeyRing>,
    pub id_secret: Arc<OnceLock<IdSecret>>,
}

/// Reads the map, the keys and the secret; builds the cluster with one connection pool
/// per worker thread (`workers`). Refuses to start beyond loopback (`local`) without a
/// key (protected mode).
pub async fn load(
    settings: &Settings,
    workers: usize,
    local: SocketAddr,
) -> anyhow::Result<Loaded> {
    let mut cluster_settings = settings.cluster.clone();
    // One pool per worker thread: share the per-server connection budget among them.
    cluster_settings.database.pool_threads = workers;
    let (map, keys, secret) = tokio::join!(
        follower::load_at_start(&cluster_settings),
        keys::ring::load_at_start(&settings.cluster),
        id_secret::load_at_start(&settings.cluster)
    );
    let id_secret = Arc::new(OnceLock::new());
    match secret {
        Ok(secret) => {
            let _ = id_secret.set(secret);
            tracing::info!("read the cluster's secret for record ids from the metadata database");
        }
        Err(e) => {
            tracing::warn!(error = %e, "the cluster's secret for record ids is not read: until the metadata database answers, records without an id under an idempotency key are refused (503)");
        }
    }
    let cluster = match map {
        Ok(map) => {
            tracing::info!(version = %map.version, shards = map.shards.len(), "loaded the shard map from the metadata database");
            Cluster::with_map(&cluster_settings, &map)?
        }
        Err(e) => {
            tracing::warn!(error = %e, "routing with the configuration's map until the metadata database answers");
            Cluster::new(cluster_settings)?
        }
    };
    Ok(Loaded {
        cluster: Arc::new(cluster),
        ring: Arc::new(key_ring(settings, local, keys)?),
        id_secret,
    })
}

/// The API keys as the metadata database holds them now, or an empty-handed ring
/// (loopback clients only until the follower reads them); refuses to start beyond
/// loopback without a key (protected mode).
fn key_ring(
    settings: &Settings,
    local: SocketAddr,
    loaded: Result<keys::KeyTable, keys::KeyError>,
) -> anyhow::Result<KeyRing> {
    let ring = match loaded {
        Ok(table) => {
            tracing::info!(
                live = table.len(),
                "loaded the API keys from the metadata database"
            );
            KeyRing::with(table)
        }
        Err(e) => {
            tracing::warn!(error = %e, "API keys not read: until the metadata database answers, only loopback clients are served (others get 503)");
            KeyRing::unknown()
        }
    };
    let table = ring.table();
    let protected_mode = settings.auth.protected_mode;
    if let Some(why) = protected::refusal(
        local,
        table.as_deref(),
        protected_mode,
        &settings.cluster.metadata,
    ) {
        anyhow::bail!(why);
    }
    if table.as_deref().is_some_and(|t| t.is_empty()) && protected_mode {
        tracing::info!("no API key: serving loopback clients only (protected mode)");
    }
    Ok(ring)
}
