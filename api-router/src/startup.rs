//! Builds the HTTP server: binds the listener, wires state, middleware and routes.

use std::net::TcpListener;
use std::sync::Arc;

use ::analytics::{Analytics, AnalyticsConfig};
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use shard_manager::{Cluster, Monitor};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{json_error, query_error};
use crate::guard::check_host;
use crate::observe::observe;
use crate::openapi::ApiDoc;
use crate::request_id::request_id;
use crate::routes::{analytics, bulk, dashboard, delete, fallback, health, read, shards, write};
use crate::settings::Settings;
use crate::state::AppState;

/// A built, bound, not yet running gateway.
pub struct Application {
    port: u16,
    server: Server,
    cluster: Arc<Cluster>,
    /// Background health checks; stopped when the application stops.
    monitor: Monitor,
}

impl Application {
    /// Binds `settings.server.listen` (port 0 picks a free port) and builds the server.
    /// Opens no database connection: the gateway starts whatever servers are down.
    /// Must be called inside a Tokio runtime (it starts the health monitor).
    pub fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&settings.server.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.server.listen))?;
        let port = listener.local_addr()?.port();
        let workers = match settings.server.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut cluster_settings = settings.cluster.clone();
        // One pool per worker thread: share the per-server connection budget among them.
        cluster_settings.database.pool_threads = workers;
        let cluster = Arc::new(Cluster::new(cluster_settings)?);
        let analytics = Arc::new(Analytics::new(AnalyticsConfig::default()));
        let state = web::Data::new(AppState {
            cluster: cluster.clone(),
            analytics: analytics.clone(),
            server: settings.server.clone(),
        });
        let body_limit = settings.server.max_body_bytes;
        let server_settings = Arc::new(settings.server.clone());
        let openapi = ApiDoc::openapi();
        let mut server = HttpServer::new(move || {
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
                    move |req, next| observe(analytics.clone(), req, next)
                }))
                .wrap(from_fn({
                    let server = server_settings.clone();
                    move |req, next| check_host(server.clone(), req, next)
                }))
                .wrap(from_fn(request_id))
                .configure(api_routes)
                .service(
                    SwaggerUi::new("/swagger-ui/{_:.*}")
                        .url("/api-docs/openapi.json", openapi.clone()),
                )
                .route("/swagger-ui", web::get().to(fallback::swagger_redirect))
                .default_service(web::to(fallback::not_found))
        })
        .listen(listener)?
        .shutdown_timeout(settings.server.shutdown_timeout_secs);
        server = server.workers(workers);
        tracing::info!(port, listen = %settings.server.listen, "gateway listening");
        let monitor = Monitor::spawn(cluster.clone());
        Ok(Self {
            port,
            server: server.run(),
            cluster,
            monitor,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster this gateway serves (tests ask it whether replicas take reads yet).
    pub fn cluster(&self) -> Arc<Cluster> {
        self.cluster.clone()
    }

    /// Serves until SIGTERM/Ctrl-C (or the server handle stops it): stops accepting,
    /// lets in-flight requests finish within the shutdown timeout, then closes pools.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        drop(self.monitor);
        self.cluster.close();
        tracing::info!("gateway stopped");
        result
    }

    /// A handle that can stop the server (tests use it for graceful shutdown).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/write")
            .route(web::post().to(write::write))
            .default_service(web::to(fallback::method_not_allowed("POST"))),
    )
    .service(
        web::resource("/api/read")
            .route(web::get().to(read::read))
            .default_service(web::to(fallback::method_not_allowed("GET"))),
    )
    .service(
        web::resource("/api/bulk-write")
            .route(web::post().to(bulk::bulk_write))
            .default_service(web::to(fallback::method_not_allowed("POST"))),
    )
    .service(
        web::resource("/api/delete")
            .route(web::delete().to(delete::delete))
            .default_service(web::to(fallback::method_not_allowed("DELETE"))),
    )
    .route("/api/health", web::get().to(health::health))
    .route("/api/health/live", web::get().to(health::live))
    .route("/api/analytics/metrics", web::get().to(analytics::metrics))
    .route("/api/analytics/errors", web::get().to(analytics::errors))
    .route("/metrics", web::get().to(analytics::prometheus))
    .route("/dashboard", web::get().to(dashboard::page))
    .route("/dashboard/{file}", web::get().to(dashboard::asset))
    .route("/api/shards", web::get().to(shards::shards))
    .route("/api/shards/locate", web::get().to(shards::locate));
}
