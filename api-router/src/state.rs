//! The state every handler shares, passed explicitly as `web::Data<AppState>`.

use std::sync::{Arc, OnceLock};

use analytics::load::SlotLoad;
use analytics::Analytics;
use control_plane::map::figures::FigureBoard;
use control_plane::moves::MoveWatch;
use shard_manager::cache::CacheUsage;
use shard_manager::store::IdSecret;
use shard_manager::Cluster;

use crate::error::ApiError;
use crate::limits::{ExportSlots, Limits};
use crate::server::drain::Draining;
use crate::server::settings::ServerSettings;
use crate::server::traces::SpanLedger;

pub struct AppState {
    pub cluster: Arc<Cluster>,
    pub analytics: Arc<Analytics>,
    /// The slot moves as last read from the metadata database (kept current by the
    /// application's watcher).
    pub moves: Arc<MoveWatch>,
    pub server: ServerSettings,
    /// Set once a stop signal arrived: readiness answers 503 while requests go on.
    pub draining: Arc<Draining>,
    /// Every API key's limiter (the access check's too): `/metrics` counts refusals.
    pub limits: Arc<Limits>,
    /// The cap on exports streaming at once (`server.max_exports`).
    pub exports: Arc<ExportSlots>,
    /// Load per slot of the key space, counted by the analytics middleware.
    pub load: Arc<SlotLoad>,
    /// The other gateways' published figures, for the cluster views.
    pub figures: Arc<FigureBoard>,
    /// This gateway's id in the map's list of live gateways.
    pub gateway_id: String,
    /// The cluster's secret for the ids of records sent without one under an
    /// idempotency key, once read from the metadata database (`control_plane::id_secret`);
    /// until then such records are refused (503), never given an id of this gateway's own.
    pub id_secret: Arc<OnceLock<IdSecret>>,
    /// The background work that builds and drops indexes on every shard: woken after
    /// each change so it starts at once.
    pub indexes: Arc<control_plane::indexes::Reconciler>,
    /// What became of the spans exported over OTLP, for `/metrics`; None with traces off.
    pub spans: Option<Arc<SpanLedger>>,
}

impl AppState {
    /// Bounds a request's cluster work by `server.request_timeout_ms`: past it the client
    /// gets a 504 problem instead of waiting on a stuck dependency. Database calls carry
    /// their own, shorter bounds (connect and statement timeouts); this is the outer one.
    pub async fn bounded<T, E>(
        &self,
        work: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, ApiError>
    where
        ApiError: From<E>,
    {
        let limit = self.server.request_timeout();
        match tokio::time::timeout(limit, work).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(_) => Err(ApiError::RequestTimeout(limit.as_millis() as u64)),
        }
    }
}

impl AppState {
    /// Counts what the cache did for one request (hits, misses, bypasses, invalidations,
    /// errors) and the time spent in Redis.
    pub fn record_cache(&self, usage: &CacheUsage) {
        for (i, event) in usage.events.iter().enumerate() {
            // The Redis time is reported once per request, with its first event.
            let latency = if i == 0 { usage.redis_time } else { None };
            self.analytics.record_cache(*event, latency);
        }
    }
}
