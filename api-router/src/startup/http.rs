//! The HTTP side of one gateway: its edge settings checked before anything starts
//! ([`Edge::checked`]), and the actix server with every middleware and route on the
//! bound listener ([`serve`]), plain, over TLS, or behind trusted proxies (the PROXY
//! protocol).

use std::sync::Arc;

use ::analytics::load::SlotLoad;
use ::analytics::Analytics;
use actix_web::dev::Server;
use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, App, HttpServer};
use telemetry::RootSampler;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::access::gate::protect;
use crate::access::Access;
use crate::edge::cors;
use crate::edge::guard::check_host;
use crate::edge::observe::observe;
use crate::edge::security_headers::{security_headers, SecurityHeaders};
use crate::error::{json_error, query_error};
use crate::routes::openapi::ApiDoc;
use crate::routes::{fallback, table};
use crate::server::proxy::{serve as proxied, TrustedProxies};
use crate::server::request_id::request_id;
use crate::server::settings::Settings;
use crate::server::stall;
use crate::server::traces::server_span::server_span;
use crate::state::AppState;

/// The edge settings, checked: the `[server]` values that cannot work
/// (ServerSettings::validate), the TLS configuration read from its files (when
/// `[server.tls]` is set), the CORS policy, and the security headers (HSTS only under
/// TLS).
pub struct Edge {
    tls: Option<rustls::ServerConfig>,
    security: Arc<SecurityHeaders>,
}

impl Edge {
    pub fn checked(settings: &Settings) -> anyhow::Result<Self> {
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
        let security = Arc::new(SecurityHeaders::new(hsts.as_deref()));
        Ok(Self { tls, security })
    }
}

/// What every request's middleware and handlers share.
pub struct Shared {
    pub state: web::Data<AppState>,
    pub analytics: Arc<Analytics>,
    pub load: Arc<SlotLoad>,
    pub access: Arc<Access>,
    /// The exported spans' sampler, when spans are exported: each request's trace is
    /// decided before its server span exists (`server::traces`).
    pub traced: Option<RootSampler>,
}

/// Opens this worker's cache connection in the background (see
/// `shard_manager::cache::Cache::warm`); nothing when the cache is off.
fn warm_cache(state: &web::Data<AppState>) {
    if state.cluster.cache().is_none() {
        return;
    }
    let cluster = state.cluster.clone();
    actix_web::rt::spawn(async move {
        if let Some(cache) = cluster.cache() {
            cache.warm().await;
        }
    });
}

/// The server on `listener`, with `workers` threads; not yet running.
pub fn serve(
    settings: &Settings,
    listener: std::net::TcpListener,
    edge: Edge,
    workers: usize,
    shared: Shared,
) -> anyhow::Result<Server> {
    let Shared {
        state,
        analytics,
        load,
        access,
        traced,
    } = shared;
    let security = edge.security;
    let body_limit = settings.server.max_body_bytes;
    let server_settings = Arc::new(settings.server.clone());
    let openapi = ApiDoc::openapi();
    let cors_settings = Arc::new(settings.server.cors.clone());
    let app = move || {
        // Runs once on each HTTP worker, on its thread: the worker's Redis connection
        // is opened now rather than by its first request.
        warm_cache(&state);
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
            // Outside the request id, whose span carries the server span's ids; the
            // caller's trace context trusted only from a caller the keys know.
            .wrap(Condition::new(
                traced.is_some(),
                from_fn({
                    let access = access.clone();
                    let sampler = traced.clone();
                    move |req, next| server_span(access.clone(), sampler.clone(), req, next)
                }),
            ))
            .wrap(from_fn({
                let security = security.clone();
                move |req, next| security_headers(security.clone(), req, next)
            }))
            .configure(|cfg| table::api_routes(cfg, &access))
            .service(
                SwaggerUi::new("/swagger-ui/{_:.*}").url("/api-docs/openapi.json", openapi.clone()),
            )
            .route("/swagger-ui", web::get().to(fallback::swagger_redirect))
            .default_service(web::to(fallback::not_found))
    };
    let trusted = TrustedProxies::parse(&settings.server.trusted_proxies)
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let server = if trusted.is_empty() {
        // Each connection's socket, so that an export's client that stops reading can be
        // cut off (server::stall).
        let server = HttpServer::new(app).on_connect(stall::on_connect);
        match edge.tls {
            Some(config) => server.listen_rustls_0_23(listener, config)?,
            None => server.listen(listener)?,
        }
        // Signals are the drain's (server::drain): actix would stop accepting at once.
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout_secs)
        .workers(workers)
        .run()
    } else {
        // Behind a load balancer: the PROXY protocol from the trusted ones
        // (ServerSettings::validate refused TLS with it).
        tracing::info!(trusted = ?settings.server.trusted_proxies, "reading the PROXY protocol from trusted proxies");
        let options = proxied::Options {
            workers,
            shutdown_timeout_secs: settings.server.shutdown_timeout_secs,
        };
        proxied::serve(listener, trusted, options, app)?
    };
    Ok(server)
}
