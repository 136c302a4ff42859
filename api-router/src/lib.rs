//! # api-router
//!
//! Shardgate's HTTP gateway. It parses and validates every request at the edge, asks
//! `shard-manager` for the work in domain terms, and maps every failure to one
//! `application/problem+json` answer. No SQL and no pool here.
//!
//! ## Layout
//! - [`settings`]: the `[server]` (with `[server.cors]` and `[server.tls]`),
//!   `[analytics]`, `[auth]` and `[limits]` sections plus the cluster settings, layered.
//! - [`startup`]: [`Application::build`](startup::Application::build) binds the listener
//!   (port 0 works), loads the shard map and the API keys from the metadata database
//!   (the config's map if it does not answer), refuses to start beyond loopback without
//!   a key (protected mode), starts the health monitor, the map and key followers and
//!   the move watch, and wires state, middleware and routes.
//! - [`state`]: [`AppState`](state::AppState), shared explicitly with every handler.
//! - [`routes`]: one file per endpoint family: `write`, `read` (point reads, and the
//!   entry for lists) and `list` (keyed and fan-out lists), `bulk`, `delete`, `health`,
//!   `shards` (map, placement, data), `analytics` (metrics, errors, Prometheus),
//!   `dashboard` (the embedded page), `fallback` (404/405 problems, the Swagger UI
//!   redirect).
//! - [`body`]: the record endpoints' JSON bodies and query parameters, request and
//!   response, in one place (the OpenAPI schemas come from them).
//! - [`moves`]: slot moves as `/api/shards` and `/metrics` show them, from the move
//!   watch's last read.
//! - [`json_body`]: [`json_body::BoundedJson`], bodies read within a byte limit and a
//!   deadline; [`json_limits`] parses them within depth, value and record limits.
//! - [`headers`]: every header name, and the one rule for reading a header.
//! - [`extract`]: header extractors, each parsed once into a domain type; `x-shard-key`
//!   becomes a routed key ([`extract::Routed`]) here and nowhere else.
//! - [`idempotency`]: the `Idempotency-Key` header and what a write sent with it keeps
//!   (each key written once; a retry gets the first answer).
//! - [`error`]: [`ApiError`](error::ApiError), the one mapping to HTTP.
//! - [`access`]: API keys and scopes (`Authorization: Bearer`, 401/403), protected mode
//!   (no key: loopback clients only; no start beyond loopback), the admin audit line.
//! - [`limits`]: fair limits per API key: a request rate (429 `rate-limited`) and a cap
//!   on a key's queries at once per shard (429 `concurrency-limited`), `RateLimit`
//!   headers; defaults in `[limits]`, a key's own in the metadata database.
//! - [`guard`]: the `Host` allow-list (421 for other names: no DNS rebinding).
//! - [`security_headers`]: `nosniff`, frame and referrer policies, CSP, `no-store`, HSTS
//!   under TLS, on every answer (the outermost middleware).
//! - [`cors`]: cross-origin requests, off unless `[server.cors]` names origins.
//! - [`tls`]: HTTPS with rustls when `[server.tls]` names a certificate and key.
//! - [`request_id`]: `x-request-id` echo/generation, in logs and problem bodies.
//! - [`observe`]: the analytics middleware (endpoint, shard, role, outcome, latency).
//! - [`proxy`]: the real client behind a load balancer (PROXY protocol from trusted
//!   proxies only).
//! - [`openapi`]: the OpenAPI document behind Swagger UI.
//! - [`telemetry`]: `tracing` set-up.

pub mod access;
pub mod body;
pub mod cors;
pub mod drain;
pub mod error;
pub mod extract;
pub mod guard;
pub mod headers;
pub mod idempotency;
pub mod json_body;
pub mod json_limits;
pub mod limits;
pub mod moves;
pub mod observe;
pub mod openapi;
pub mod proxy;
pub mod request_id;
pub mod routes;
pub mod security_headers;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod tls;
