//! The task that keeps a gateway's map ([`MapState`], in the request path) current
//! ([`Follower`]): LISTEN for announced versions, poll as a fallback, heartbeat, and
//! list the live gateways. The failovers and switchovers of the history are read at
//! start and again whenever the map routed with has other terms (every promotion
//! raises one).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::gateways::{self, Identity};
use super::meta::{self, CHANNEL};
use super::{promotions, MapError};
use shard_manager::config::ClusterSettings;
use shard_manager::live_map::{MapState, ShardMap};

/// Longest a metadata round trip may take before the database counts as unreachable.
const META_TIMEOUT: Duration = Duration::from_secs(2);

/// The running follow task; stops when dropped.
pub struct Follower(tokio::task::JoinHandle<()>);

/// Told, after each heartbeat, that this gateway was listed before the given instant.
pub type OnListed = Box<dyn Fn(Instant) + Send + Sync>;

impl Drop for Follower {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Follower {
    /// Follows the metadata database for `state`, heartbeating as `me`.
    pub fn spawn(state: Arc<MapState>, me: Identity) -> Self {
        Self::spawn_telling(state, me, Box::new(|_| {}))
    }

    /// The same, telling `on_listed` after each heartbeat (a cache that waits to be
    /// listed before it reads: `Cache::hold_until_listed`).
    pub fn spawn_telling(state: Arc<MapState>, me: Identity, on_listed: OnListed) -> Self {
        Self(tokio::spawn(follow(state, me, on_listed)))
    }
}

async fn follow(state: Arc<MapState>, me: Identity, on_listed: OnListed) {
    let meta = &state.settings().metadata;
    let poll = Duration::from_millis(meta.poll_ms.clamp(10, 60_000));
    let beat_every = Duration::from_millis(meta.heartbeat_ms.clamp(10, 60_000));
    loop {
        let mut conn = match meta::connect(state.settings()).await {
            Ok(conn) => conn,
            Err(e) => {
                state.unreachable(e.to_string());
                let _ =
                    tokio::time::timeout(Duration::from_millis(500), state.wake().notified()).await;
                continue;
            }
        };
        let listen = format!("LISTEN {CHANNEL}");
        if let Err(e) = bounded(async { Ok(conn.client.batch_execute(&listen).await?) }).await {
            state.unreachable(e.to_string());
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        let mut last_beat: Option<Instant> = None;
        // The terms the promotions were last read for (None: not read on this
        // connection yet).
        let mut read_for: Option<Vec<u64>> = None;
        loop {
            // The heartbeat first: a gateway is listed (and a mover can tell its cache)
            // even while no map is stored yet.
            let step = bounded(async {
                if last_beat.is_none_or(|t| t.elapsed() >= beat_every) {
                    gateways::heartbeat(&conn.client, &me, state.version()).await?;
                    let beat = Instant::now();
                    on_listed(beat);
                    let live = gateways::live(&conn.client, meta.gateway_ttl_ms).await?;
                    state.set_gateways(live);
                    match gateways::end_fences_of_the_gone(&conn.client, meta.gateway_ttl_ms).await
                    {
                        Ok(0) => {}
                        Ok(ended) => tracing::warn!(
                            ended,
                            "ended the fence sessions of gateways no longer listed"
                        ),
                        Err(e) => {
                            tracing::debug!(error = %e, "could not look for the fence sessions of gateways gone")
                        }
                    }
                    last_beat = Some(beat);
                }
                follow_once(&state, &mut conn.client).await
            });
            if let Err(e) = step.await {
                state.unreachable(e.to_string());
                break;
            }
            state.answered();
            // Bounded on its own, and not a reason to reconnect: the map is followed;
            // the history is read again next round (what was shown stays meanwhile).
            let terms = state.terms();
            if read_for.as_ref() != Some(&terms) {
                match bounded(promotions::load(&conn.client)).await {
                    Ok(log) => {
                        state.set_promotions(log);
                        read_for = Some(terms);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not read the failovers of the map's history (tried again next round)");
                    }
                }
            }
            tokio::select! {
                got = conn.notifications.recv() => {
                    if got.is_none() {
                        state.unreachable("the metadata connection closed".into());
                        break;
                    }
                }
                _ = state.wake().notified() => {}
                _ = tokio::time::sleep(poll.min(beat_every)) => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn bounded<T>(
    work: impl std::future::Future<Output = Result<T, MapError>>,
) -> Result<T, MapError> {
    tokio::time::timeout(META_TIMEOUT, work)
        .await
        .map_err(|_| {
            MapError::Invalid(format!("no answer within {} ms", META_TIMEOUT.as_millis()))
        })?
}

/// Loads the stored map for a gateway starting up (bounded by the connect timeout).
pub async fn load_at_start(settings: &ClusterSettings) -> Result<ShardMap, MapError> {
    let mut conn = meta::connect(settings).await?;
    bounded(meta::load(&mut conn.client))
        .await?
        .ok_or(MapError::NotInitialised)
}

/// Loads the stored map if it is newer than the one routed with.
async fn follow_once(
    state: &MapState,
    client: &mut tokio_postgres::Client,
) -> Result<(), MapError> {
    if !state.should_look() {
        return Ok(());
    }
    let Some(stored) = meta::version(client).await? else {
        return Err(MapError::NotInitialised);
    };
    if state.should_adopt(stored) {
        if let Some(map) = meta::load(client).await? {
            state.adopt(&map).map_err(MapError::Corrupt)?;
        }
    }
    Ok(())
}
