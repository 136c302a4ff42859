//! Builds the HTTP server: binds the listener, wires state, middleware and routes.

use std::sync::{Arc, OnceLock};

use ::analytics::{Analytics, SlotLoad};
use actix_web::dev::Server;
use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, App, HttpServer};
use control_plane::failover;
use control_plane::health::Sweeper;
use control_plane::id_secret::{self, IdSecretReader};
use control_plane::keys::{self, KeyFollower, KeyRing};
use control_plane::map::figures::{FigureBoard, Published, Publisher};
use control_plane::map::{follower, Follower, Identity};
use control_plane::moves::auto_balance::Balancer;
use control_plane::moves::{MoveWatch, Watcher};
use control_plane::Monitor;
use shard_manager::Cluster;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::access::gate::protect;
use crate::access::{protected, Access};
use crate::edge::cors;
use crate::edge::guard::check_host;
use crate::edge::observe::observe;
use crate::edge::security_headers::{security_headers, SecurityHeaders};
use crate::error::{json_error, query_error};
use crate::limits::{ExportSlots, Limits};
use crate::routes::openapi::ApiDoc;
use crate::routes::{fallback, table};
use crate::server::drain::{Draining, Shutdown};
use crate::server::proxy::{serve, TrustedProxies};
use crate::server::request_id::request_id;
use crate::server::settings::Settings;
use crate::server::stall;
use crate::state::AppState;

/// A built, bound, not yet running gateway.
pub struct Application {
    port: u16,
    server: Server,
    cluster: Arc<Cluster>,
    /// Background health checks; stopped when the application stops.
    monitor: Monitor,
    /// Deletes expired idempotency entries; stopped with the application.
    sweeper: Sweeper,
    /// Follows the shard map in the metadata database; stopped with the application.
    follower: Follower,
    /// Publishes this gateway's figures for the cluster views; stopped with the
    /// application.
    publisher: Publisher,
    /// The automatic balancer (`[balancer] auto`), when on; stopped with the application.
    balancer: Option<Balancer>,
    /// Follows the API keys there; stopped with the application.
    keys: KeyFollower,
    /// Reads the cluster's secret for record ids when the start could not; stopped
    /// with the application (or once it has the secret).
    id_secret: IdSecretReader,
    /// Reads the slot moves from the metadata database; stopped with the application.
    watcher: Watcher,
    /// Follows a shard's promotion by its HA manager (`failover.watch`); stopped with
    /// the application.
    failover: Option<failover::Watcher>,
    /// Resolves prepared transaction parts a dead gateway left; stopped with the
    /// application.
    recovery: control_plane::txn::Recovery,
    /// Drains, then stops the server (on a signal, or when a test asks).
    shutdown: Shutdown,
}

impl Application {
    /// Binds `settings.server.listen` (port 0 picks a free port), loads the shard map
    /// from the metadata database and builds the server. Opens no shard connection:
    /// the gateway starts whatever servers are down. When the metadata database does
    /// not answer (within the connect timeout) it starts with the config file's map,
    /// which the shards check like any other, and follows the database once it answers;
    /// until it has read the cluster's secret for record ids from it, records sent
    /// without an id under an idempotency key are refused (`control_plane::id_secret`).
    /// Must be called inside a Tokio runtime (it starts the monitor, the follower and
    /// the move watcher).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let (tls, security) = edge(&settings)?;
        let listener = crate::server::listener::bind(&settings.server.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.server.listen))?;
        let local = listener.local_addr()?;
        let port = local.port();
        let workers = match settings.server.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut cluster_settings = settings.cluster.clone();
        // One pool per worker thread: share the per-server connection budget among them.
        cluster_settings.database.pool_threads = workers;
        // The map, the keys and the record ids' secret are read together: with the
        // metadata database down, the start waits for one connect timeout, not three.
        let (map, keys, secret) = tokio::join!(
            follower::load_at_start(&cluster_settings),
            keys::ring::load_at_start(&settings.cluster),
            id_secret::load_at_start(&settings.cluster)
        );
        let id_secret = Arc::new(OnceLock::new());
        match secret {
            Ok(secret) => {
                let _ = id_secret.set(secret);
                tracing::info!(
                    "read the cluster's secret for record ids from the metadata database"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "the cluster's secret for record ids is not read: until the metadata database answers, records without an id under an idempotency key are refused (503)");
            }
        }
        let id_secret_reader = IdSecretReader::spawn(id_secret.clone(), settings.cluster.clone());
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
        let cluster = Arc::new(cluster);
        let ring = Arc::new(key_ring(&settings, local, keys)?);
        settings
            .limits
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        let limits = Arc::new(Limits::new(&settings.limits));
        let access = Arc::new(Access {
            ring: ring.clone(),
            protected_mode: settings.auth.protected_mode,
            limits: limits.clone(),
        });
        settings
            .analytics
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        let analytics = Arc::new(Analytics::new(settings.analytics.clone()));
        let load = Arc::new(
            SlotLoad::new(cluster.router().slot_count()).counting(settings.analytics.load_per_slot),
        );
        let figures = Arc::new(FigureBoard::default());
        let host = settings
            .server
            .listen
            .rsplit_once(':')
            .map_or("127.0.0.1", |(h, _)| h);
        let identity = Identity::new(format!("{host}:{port}")).with_cache(&settings.cluster.cache);
        let moves = Arc::new(MoveWatch::new(settings.cluster.clone()));
        let draining = Arc::new(Draining::default());
        let state = web::Data::new(AppState {
            cluster: cluster.clone(),
            analytics: analytics.clone(),
            moves: moves.clone(),
            server: settings.server.clone(),
            draining: draining.clone(),
            limits,
            exports: Arc::new(ExportSlots::new(settings.server.max_exports)),
            load: load.clone(),
            figures: figures.clone(),
            gateway_id: identity.id.to_string(),
            id_secret,
        });
        // This gateway's figures for the others' cluster views, taken off the request
        // path by the publisher (which folds the slot counters as it goes).
        let publish_every = std::time::Duration::from_millis(analytics.config().publish_ms);
        let publish_figures = {
            let (analytics, load) = (analytics.clone(), load.clone());
            move || {
                let mut figures = analytics.figures();
                figures.load = load.figures();
                figures.to_bytes()
            }
        };
        let body_limit = settings.server.max_body_bytes;
        let server_settings = Arc::new(settings.server.clone());
        let openapi = ApiDoc::openapi();
        let cors_settings = Arc::new(settings.server.cors.clone());
        let app = move || {
            App::new()
                .app_data(state.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(body_limit)
                        .error_handler(json_error),
                )
                .app_data(web::QueryConfig::default().error_handler(query_error))
                .wrap(from_fn({
                    let analytics = analytics.clone();
                    let load = load.clone();
                    move |req, next| observe(analytics.clone(), load.clone(), req, next)
                }))
                .wrap(from_fn({
                    let access = access.clone();
                    move |req, next| protect(access.clone(), req, next)
                }))
                .wrap(Condition::new(
                    cors_settings.enabled(),
                    cors_settings.middleware(),
                ))
                .wrap(from_fn({
                    let cors = cors_settings.clone();
                    move |req, next| cors::refusals(cors.clone(), req, next)
                }))
                .wrap(from_fn({
                    let server = server_settings.clone();
                    move |req, next| check_host(server.clone(), req, next)
                }))
                .wrap(from_fn(request_id))
                .wrap(from_fn({
                    let security = security.clone();
                    move |req, next| security_headers(security.clone(), req, next)
                }))
                .configure(|cfg| table::api_routes(cfg, &access))
                .service(
                    SwaggerUi::new("/swagger-ui/{_:.*}")
                        .url("/api-docs/openapi.json", openapi.clone()),
                )
                .route("/swagger-ui", web::get().to(fallback::swagger_redirect))
                .default_service(web::to(fallback::not_found))
        };
        let trusted = TrustedProxies::parse(&settings.server.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        let server = if trusted.is_empty() {
            // Each connection's socket, so that an export's client that stops reading
            // can be cut off (server::stall).
            let server = HttpServer::new(app).on_connect(stall::on_connect);
            match tls {
                Some(config) => server.listen_rustls_0_23(listener, config)?,
                None => server.listen(listener)?,
            }
            // Signals are the drain's (server::drain): actix would stop accepting at once.
            .disable_signals()
            .shutdown_timeout(settings.server.shutdown_timeout_secs)
            .workers(workers)
            .run()
        } else {
            // Behind a load balancer: the PROXY protocol from the trusted ones (ServerSettings::validate refused TLS with it).
            tracing::info!(trusted = ?settings.server.trusted_proxies, "reading the PROXY protocol from trusted proxies");
            let options = serve::Options {
                workers,
                shutdown_timeout_secs: settings.server.shutdown_timeout_secs,
            };
            serve::serve(listener, trusted, options, app)?
        };
        let scheme = if settings.server.tls.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!(port, listen = %settings.server.listen, scheme, "gateway listening");
        let monitor = Monitor::spawn(cluster.clone());
        // Never 0: refused at start-up (ServerSettings::validate).
        let sweep_every = std::time::Duration::from_secs(settings.server.idempotency_sweep_secs);
        let sweeper = Sweeper::spawn(cluster.clone(), sweep_every);
        let publisher = Publisher::spawn(
            settings.cluster.clone(),
            identity.id,
            publish_every,
            figures,
            publish_figures,
        );
        let gateway = identity.id;
        // A cache reads no epoch until this gateway is listed, where movers find its
        // prefix to tell it of a retired epoch.
        let follower = match cluster.cache() {
            Some(cache) => {
                cache.hold_until_listed();
                let owner = cluster.clone();
                let listed = move |at| {
                    if let Some(cache) = owner.cache() {
                        cache.listed(at);
                    }
                };
                Follower::spawn_telling(cluster.map().clone(), identity, Box::new(listed))
            }
            None => Follower::spawn(cluster.map().clone(), identity),
        };
        let balancer = Balancer::spawn(
            settings.cluster.clone(),
            settings.balancer.clone(),
            slot_requests,
        );
        let keys = KeyFollower::spawn(ring, settings.cluster.clone());
        let watcher = Watcher::spawn(moves);
        let failover = settings
            .cluster
            .failover
            .watch
            .then(|| failover::Watcher::spawn(cluster.clone()));
        // Transactions on several shards log their decisions in the metadata database;
        // every gateway resolves what a dead one left prepared.
        let log: Arc<dyn shard_manager::cluster::txn::log::DecisionLog> =
            Arc::new(control_plane::txn::MetaLog::new(settings.cluster.clone()));
        let bound = std::time::Duration::from_millis(settings.server.txn_in_doubt_ms);
        cluster.set_decision_log(log.clone(), bound);
        // Snapshot reads take the fence that holds back those decisions.
        cluster.set_cut_fence(Arc::new(control_plane::txn::MetaFence::new(
            settings.cluster.clone(),
            &gateway,
        )));
        let recovery = control_plane::txn::Recovery::spawn(
            cluster.clone(),
            log,
            std::time::Duration::from_millis(settings.server.txn_recovery_ms),
            bound,
        );
        let shutdown = Shutdown::new(
            draining,
            std::time::Duration::from_millis(settings.server.drain_ms),
            server.handle(),
        );
        Ok(Self {
            port,
            server,
            shutdown,
            cluster,
            monitor,
            sweeper,
            follower,
            keys,
            id_secret: id_secret_reader,
            watcher,
            failover,
            recovery,
            publisher,
            balancer,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster this gateway serves (tests ask it whether replicas take reads yet).
    pub fn cluster(&self) -> Arc<Cluster> {
        self.cluster.clone()
    }

    /// Serves until SIGTERM/Ctrl-C (or a handle stops it). A signal drains first
    /// (server::drain), then stops accepting; in-flight requests finish within the
    /// shutdown timeout; then the pools close.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let signals = tokio::spawn(self.shutdown.clone().on_signal());
        let result = self.server.await;
        signals.abort();
        drop(self.monitor);
        drop(self.sweeper);
        drop(self.follower);
        drop(self.keys);
        drop(self.id_secret);
        drop(self.watcher);
        drop(self.failover);
        drop(self.recovery);
        drop(self.publisher);
        drop(self.balancer);
        self.cluster.close();
        tracing::info!("gateway stopped");
        result
    }

    /// A handle that can stop the server at once (tests use it for graceful shutdown).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Stops the server the way a signal does: drain, then stop.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }
}

/// Each slot's requests over the last minute, summed over the gateways' published
/// figures: what the automatic balancer evens out.
fn slot_requests(published: &[Published], slots: usize) -> Vec<u64> {
    let mut weights = vec![0u64; slots];
    for figures in published
        .iter()
        .filter_map(|p| ::analytics::Figures::from_bytes(&p.figures))
    {
        if let Some(minute) = figures.load.windows.get(1) {
            for (slot, counts) in &minute.slots {
                if let Some(w) = weights.get_mut(*slot as usize) {
                    *w += counts.requests;
                }
            }
        }
    }
    weights
}

/// The edge settings, checked before anything starts: the `[server]` values that
/// cannot work (ServerSettings::validate), the TLS configuration read from
/// its files (when `[server.tls]` is set), the CORS policy, and the security headers
/// (HSTS only under TLS).
fn edge(
    settings: &Settings,
) -> anyhow::Result<(Option<rustls::ServerConfig>, Arc<SecurityHeaders>)> {
    let server = &settings.server;
    server
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    server
        .cors
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let tls = match &server.tls {
        Some(tls) => Some(
            tls.server_config()
                .map_err(|e| anyhow::anyhow!("refusing to start: {e}"))?,
        ),
        None => None,
    };
    let hsts = server.tls.as_ref().and_then(|t| t.hsts());
    Ok((tls, Arc::new(SecurityHeaders::new(hsts.as_deref()))))
}

/// The API keys as the metadata database holds them now, or an empty-handed ring
/// (loopback clients only until the follower reads them); refuses to start beyond
/// loopback without a key (protected mode).
fn key_ring(
    settings: &Settings,
    local: std::net::SocketAddr,
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
