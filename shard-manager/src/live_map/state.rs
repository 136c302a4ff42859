//! The map a gateway routes with now ([`MapState`]): read lock-free by every request
//! (`arc-swap`), replaced by the control plane's follower when the metadata database
//! announces a newer version, and asked for a reload when a shard refuses a slot
//! ([`MapState::refresh`]). When the metadata database cannot be reached the gateway
//! keeps routing with the last map it had, and says so in its status.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::{watch, Notify};

use super::gateway_info::GatewayInfo;
use super::promotions::PromotionLog;
use super::shard_map::ShardMap;
use crate::config::ClusterSettings;
use crate::routing::{MapVersion, Router};

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

/// Called with every map about to be routed with: makes the cluster's shards match it
/// (pools for new shards, fresh servers for a shard whose primary or replicas changed,
/// as after a failover); how many shards it has then. `Err` keeps the old map.
pub type FollowShards = Box<dyn Fn(&ShardMap) -> Result<usize, String> + Send + Sync>;

/// The map a gateway routes with.
pub struct MapState {
    router: ArcSwap<Router>,
    settings: ClusterSettings,
    shard_count: AtomicUsize,
    /// Makes the cluster's shards match a map before it is routed with.
    follow_shards: Mutex<Option<FollowShards>>,
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
    /// Each shard's primary term in the map routed with (empty: the config's map).
    terms: Mutex<Vec<u64>>,
    /// The failovers and switchovers of the map's history, as last read.
    promotions: ArcSwap<PromotionLog>,
}

impl MapState {
    /// `router` routes from now on; `from_metadata` says whether it came from there.
    pub fn new(settings: ClusterSettings, router: Router, from_metadata: bool) -> Self {
        let version = router.version().0;
        Self {
            shard_count: AtomicUsize::new(router.shard_count() as usize),
            follow_shards: Mutex::new(None),
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
            terms: Mutex::new(Vec::new()),
            promotions: ArcSwap::from_pointee(PromotionLog::default()),
        }
    }

    /// Shard `index`'s primary term in the map routed with (1 until a map says more).
    pub fn term(&self, index: usize) -> u64 {
        let terms = self.terms.lock().unwrap_or_else(|p| p.into_inner());
        terms.get(index).copied().unwrap_or(1)
    }

    /// Every shard's primary term in the map routed with (empty: the config's map).
    pub fn terms(&self) -> Vec<u64> {
        self.terms.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The failovers and switchovers of the map's history, as last read.
    pub fn promotions(&self) -> Arc<PromotionLog> {
        self.promotions.load_full()
    }

    /// The map's history read again (after a map whose terms changed, and at start).
    pub fn set_promotions(&self, log: PromotionLog) {
        self.promotions.store(Arc::new(log));
    }

    /// Remembers `map`'s terms (the map a cluster starts with, then every adopted one).
    pub fn note_terms(&self, map: &ShardMap) {
        let terms = map.shards.iter().map(|s| s.term).collect();
        *self.terms.lock().unwrap_or_else(|p| p.into_inner()) = terms;
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

    /// Where the cluster makes its shards match a map.
    pub fn on_follow_shards(&self, follow: FollowShards) {
        *self.follow_shards.lock().unwrap_or_else(|p| p.into_inner()) = Some(follow);
    }

    /// Routes with `map` from now on, if this gateway can: the same shards, or more
    /// (their pools are added first), each with the servers the map names (a failover
    /// changes a shard's primary); a map with fewer shards waits for a restart.
    pub fn adopt(&self, map: &ShardMap) -> Result<(), String> {
        let have = self.shard_count.load(Ordering::SeqCst);
        let followed = match map.shards.len() < have {
            true => Err(format!(
                "this gateway was started with {have}: restart it to follow"
            )),
            false => self.follow_shards(map, have),
        };
        match followed {
            Ok(now) => {
                if now != have {
                    tracing::info!(shards = now, version = %map.version, "pools added for the map's new shards");
                }
                self.shard_count.store(now, Ordering::SeqCst);
            }
            Err(why) => {
                let why = format!("{} has {} shards; {why}", map.version, map.shards.len());
                *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                return Ok(());
            }
        }
        let router = map.router().map_err(|e| e.to_string())?;
        let version = router.version();
        self.note_terms(map);
        self.router.store(Arc::new(router));
        *self.source.lock().unwrap_or_else(|p| p.into_inner()) = "metadata";
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.version.send_replace(version.0);
        tracing::info!(%version, "routing with a new shard map");
        Ok(())
    }

    fn follow_shards(&self, map: &ShardMap, have: usize) -> Result<usize, String> {
        let follow = self.follow_shards.lock().unwrap_or_else(|p| p.into_inner());
        match follow.as_ref() {
            Some(follow) => follow(map),
            None if map.shards.len() == have => Ok(have),
            None => Err("this gateway cannot add shards: restart it to follow".into()),
        }
    }

    /// The metadata database answered: the map is followed again.
    pub fn answered(&self) {
        self.reachable.store(true, Ordering::Relaxed);
        *self.error.lock().unwrap_or_else(|p| p.into_inner()) = None;
        *self.answered.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    /// The metadata database did not answer: routing goes on with the last map.
    pub fn unreachable(&self, why: String) {
        if self.reachable.swap(false, Ordering::Relaxed) {
            tracing::warn!(error = %why, version = %self.version(), "metadata database unreachable: routing with the last map");
        }
        *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
    }

    /// The settings the gateway started with (where the metadata database is).
    pub fn settings(&self) -> &ClusterSettings {
        &self.settings
    }

    /// The live gateways, as the last heartbeat listed them.
    pub fn set_gateways(&self, live: Vec<GatewayInfo>) {
        *self.gateways.lock().unwrap_or_else(|p| p.into_inner()) = live;
    }

    /// Woken when a request asks for a newer map ([`refresh`](Self::refresh)).
    pub fn wake(&self) -> &Notify {
        &self.wake
    }

    /// Whether the stored map should be looked at now: always, unless the test-only
    /// freeze holds and no request asked for a newer version than the one routed with.
    pub fn should_look(&self) -> bool {
        let wanted = self.wanted.load(Ordering::SeqCst);
        !(self.frozen.load(Ordering::SeqCst) && wanted <= self.version().0)
    }

    /// Whether a stored map of version `stored` is to be adopted: a newer one, or any
    /// while the gateway still routes with its config file's map.
    pub fn should_adopt(&self, stored: MapVersion) -> bool {
        stored > self.version()
            || *self.source.lock().unwrap_or_else(|p| p.into_inner()) == "config"
    }
}
