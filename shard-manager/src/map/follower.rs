//! A gateway's current map ([`MapState`]) and the task that keeps it current
//! ([`Follower`]): LISTEN for announced versions, poll as a fallback, heartbeat.
//!
//! Requests read the router lock-free (`arc-swap`). When the metadata database cannot
//! be reached the gateway keeps routing with the last map it had, and says so in its
//! status; it follows again as soon as the database answers. A shard's refusal asks for
//! a reload at once ([`MapState::refresh`]), whatever the poll interval.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::{watch, Notify};

use super::gateways::{self, GatewayInfo, Identity};
use super::meta::{self, CHANNEL};
use super::shard_map::ShardMap;
use super::MapError;
use crate::config::ClusterSettings;
use crate::routing::{MapVersion, Router};

/// Longest a metadata round trip may take before the database counts as unreachable.
const META_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest a request waits for a newer map after a shard refused its slot.
const REFRESH_WAIT: Duration = Duration::from_secs(1);

/// Where the gateway's map stands, for `/api/health` and `/api/shards`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MapStatus {
    /// The map version requests are routed with (0: the config file's map, never
    /// confirmed by the metadata database).
    pub version: u64,
    /// `metadata` or `config`.
    pub source: &'static str,
    /// Whether the last exchange with the metadata database succeeded.
    pub reachable: bool,
    /// Why it did not, while it does not.
    pub error: Option<String>,
    /// Milliseconds since the metadata database last answered (None: never).
    pub answered_ms_ago: Option<u64>,
    /// A newer map this gateway cannot adopt without a restart, and why.
    pub pending: Option<String>,
}

/// Called with a map that has more shards than the gateway: `Err` keeps the old map.
pub type MoreShards = Box<dyn Fn(&ShardMap) -> Result<usize, String> + Send + Sync>;

/// The map a gateway routes with.
pub struct MapState {
    router: ArcSwap<Router>,
    settings: ClusterSettings,
    shard_count: AtomicUsize,
    /// Adds pools for a map's new shards (the cluster's), before it is routed with.
    more_shards: Mutex<Option<MoreShards>>,
    source: Mutex<&'static str>,
    reachable: AtomicBool,
    error: Mutex<Option<String>>,
    answered: Mutex<Option<Instant>>,
    pending: Mutex<Option<String>>,
    gateways: Mutex<Vec<GatewayInfo>>,
    version: watch::Sender<u64>,
    wake: Notify,
    /// The newest version a refused request asked for.
    wanted: AtomicU64,
    /// Test-only: stop following announcements and polls (refusals still reload).
    frozen: AtomicBool,
}

impl MapState {
    /// `router` routes from now on; `from_metadata` says whether it came from there.
    pub fn new(settings: ClusterSettings, router: Router, from_metadata: bool) -> Self {
        let version = router.version().0;
        Self {
            shard_count: AtomicUsize::new(router.shard_count() as usize),
            more_shards: Mutex::new(None),
            router: ArcSwap::from_pointee(router),
            settings,
            source: Mutex::new(if from_metadata { "metadata" } else { "config" }),
            reachable: AtomicBool::new(from_metadata),
            error: Mutex::new(None),
            answered: Mutex::new(from_metadata.then(Instant::now)),
            pending: Mutex::new(None),
            gateways: Mutex::new(Vec::new()),
            version: watch::Sender::new(version),
            wake: Notify::new(),
            wanted: AtomicU64::new(0),
            frozen: AtomicBool::new(false),
        }
    }

    /// The router requests use now.
    pub fn router(&self) -> arc_swap::Guard<Arc<Router>> {
        self.router.load()
    }

    pub fn version(&self) -> MapVersion {
        self.router.load().version()
    }

    pub fn status(&self) -> MapStatus {
        let lock = |m: &Mutex<Option<String>>| m.lock().unwrap_or_else(|p| p.into_inner()).clone();
        MapStatus {
            version: self.version().0,
            source: *self.source.lock().unwrap_or_else(|p| p.into_inner()),
            reachable: self.reachable.load(Ordering::Relaxed),
            error: lock(&self.error),
            answered_ms_ago: self
                .answered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .map(|t| t.elapsed().as_millis() as u64),
            pending: lock(&self.pending),
        }
    }

    /// The live gateways as last heard (refreshed every heartbeat).
    pub fn gateways(&self) -> Vec<GatewayInfo> {
        self.gateways
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits (at most a second) for a map at least `at_least`; returns the version
    /// routed with afterwards. Called when a shard refused a slot.
    pub async fn refresh(&self, at_least: MapVersion) -> MapVersion {
        let mut seen = self.version.subscribe();
        if self.version() >= at_least {
            return self.version();
        }
        self.wanted.fetch_max(at_least.0, Ordering::SeqCst);
        self.wake.notify_one();
        let _ = tokio::time::timeout(REFRESH_WAIT, seen.wait_for(|v| *v >= at_least.0)).await;
        self.version()
    }

    /// Test-only switch: a frozen gateway ignores announcements and polls, so its map
    /// goes stale on purpose (a shard's refusal still makes it reload).
    #[cfg(feature = "faults")]
    pub fn freeze(&self, frozen: bool) {
        self.frozen.store(frozen, Ordering::SeqCst);
    }

    /// Where the cluster adds pools for a map's new shards.
    pub fn on_more_shards(&self, grow: MoreShards) {
        *self.more_shards.lock().unwrap_or_else(|p| p.into_inner()) = Some(grow);
    }

    /// Routes with `map` from now on, if this gateway can: the same shards, or more
    /// (their pools are added first); a map with fewer shards waits for a restart.
    fn adopt(&self, map: &ShardMap) -> Result<(), MapError> {
        let have = self.shard_count.load(Ordering::SeqCst);
        if map.shards.len() != have {
            let grown = match map.shards.len() > have {
                true => self.grow(map),
                false => Err(format!(
                    "this gateway was started with {have}: restart it to follow"
                )),
            };
            match grown {
                Ok(now) => {
                    tracing::info!(shards = now, version = %map.version, "pools added for the map's new shards");
                    self.shard_count.store(now, Ordering::SeqCst);
                }
                Err(why) => {
                    let why = format!("{} has {} shards; {why}", map.version, map.shards.len());
                    *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                    return Ok(());
                }
            }
        }
        let router = map.router().map_err(|e| MapError::Corrupt(e.to_string()))?;
        let version = router.version();
        self.router.store(Arc::new(router));
        *self.source.lock().unwrap_or_else(|p| p.into_inner()) = "metadata";
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.version.send_replace(version.0);
        tracing::info!(%version, "routing with a new shard map");
        Ok(())
    }

    fn grow(&self, map: &ShardMap) -> Result<usize, String> {
        let grow = self.more_shards.lock().unwrap_or_else(|p| p.into_inner());
        match grow.as_ref() {
            Some(grow) => grow(map),
            None => Err("this gateway cannot add shards: restart it to follow".into()),
        }
    }

    fn answered(&self) {
        self.reachable.store(true, Ordering::Relaxed);
        *self.error.lock().unwrap_or_else(|p| p.into_inner()) = None;
        *self.answered.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    fn unreachable(&self, why: String) {
        if self.reachable.swap(false, Ordering::Relaxed) {
            tracing::warn!(error = %why, version = %self.version(), "metadata database unreachable: routing with the last map");
        }
        *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
    }

    /// Loads the stored map if it is newer than the one routed with.
    async fn follow_once(&self, client: &mut tokio_postgres::Client) -> Result<(), MapError> {
        let wanted = self.wanted.load(Ordering::SeqCst);
        if self.frozen.load(Ordering::SeqCst) && wanted <= self.version().0 {
            return Ok(());
        }
        let Some(stored) = meta::version(client).await? else {
            return Err(MapError::NotInitialised);
        };
        if stored > self.version()
            || *self.source.lock().unwrap_or_else(|p| p.into_inner()) == "config"
        {
            if let Some(map) = meta::load(client).await? {
                self.adopt(&map)?;
            }
        }
        Ok(())
    }
}

/// The running follow task; stops when dropped.
pub struct Follower(tokio::task::JoinHandle<()>);

impl Drop for Follower {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Follower {
    /// Follows the metadata database for `state`, heartbeating as `me`.
    pub fn spawn(state: Arc<MapState>, me: Identity) -> Self {
        Self(tokio::spawn(follow(state, me)))
    }
}

async fn follow(state: Arc<MapState>, me: Identity) {
    let meta = &state.settings.metadata;
    let poll = Duration::from_millis(meta.poll_ms.clamp(10, 60_000));
    let beat_every = Duration::from_millis(meta.heartbeat_ms.clamp(10, 60_000));
    loop {
        let mut conn = match meta::connect(&state.settings).await {
            Ok(conn) => conn,
            Err(e) => {
                state.unreachable(e.to_string());
                let _ =
                    tokio::time::timeout(Duration::from_millis(500), state.wake.notified()).await;
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
        loop {
            let step = bounded(async {
                state.follow_once(&mut conn.client).await?;
                if last_beat.is_none_or(|t| t.elapsed() >= beat_every) {
                    gateways::heartbeat(&conn.client, &me, state.version()).await?;
                    let live = gateways::live(&conn.client, meta.gateway_ttl_ms).await?;
                    *state.gateways.lock().unwrap_or_else(|p| p.into_inner()) = live;
                    last_beat = Some(Instant::now());
                }
                Ok(())
            });
            if let Err(e) = step.await {
                state.unreachable(e.to_string());
                break;
            }
            state.answered();
            tokio::select! {
                got = conn.notifications.recv() => {
                    if got.is_none() {
                        state.unreachable("the metadata connection closed".into());
                        break;
                    }
                }
                _ = state.wake.notified() => {}
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
