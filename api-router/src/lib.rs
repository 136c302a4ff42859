//! # api-router
//!
//! Shardgate's HTTP gateway. It parses and validates every request at the edge, asks
//! `shard-manager` for the work in domain terms, and maps every failure to one
//! `application/problem+json` answer. No SQL and no pool here.
//!
//! ## Layout
//! From the top down; a module uses only those below it, but for two ties noted here.
//! - [`probe`]: `api-router probe --ready | --live`, the binary asking its own health
//!   endpoints on the configured port, for container health checks without a shell.
//! - [`startup`]: [`Application::build`](startup::Application::build) checks the
//!   settings, binds the listener (port 0 works), reads the shard map, the API keys and
//!   the record ids' secret from the metadata database (`from_metadata`: the config's map
//!   if it does not answer; no start beyond loopback without a key), builds the HTTP
//!   server with its middleware and routes (`http`), and starts the background tasks,
//!   all owned by one `Background` that stops them with the gateway.
//! - [`routes`]: one file per endpoint family (`write`, `read`, `list`, `query`, `bulk`,
//!   `delete`, `health`, `shards`, `analytics`, `dashboard`, `fallback`), the slot moves
//!   as they show them, and the OpenAPI document behind Swagger UI.
//! - [`input`]: reading a request: header extractors (`x-shard-key` becomes a routed key
//!   there and nowhere else), JSON bodies within byte, time, depth and value limits, the
//!   record endpoints' bodies and parameters, the `Idempotency-Key`.
//! - [`state`]: [`AppState`](state::AppState), shared explicitly with every handler.
//! - [`edge`]: the middleware around every request: security headers, the `Host`
//!   allow-list, CORS, the analytics observer.
//! - [`access`]: API keys and scopes (`Authorization: Bearer`, 401/403), protected mode
//!   (no key: loopback clients only; no start beyond loopback), the admin audit line.
//! - [`error`]: [`ApiError`](error::ApiError), the one mapping to HTTP. It maps the
//!   bearer header's error too, so it uses `access::bearer`, below the rest of `access`.
//! - [`limits`]: fair limits per API key: a request rate (429 `rate-limited`) and a cap
//!   on a key's queries at once per shard (429 `concurrency-limited`), `RateLimit`
//!   headers; defaults in `[limits]`, a key's own in the metadata database.
//! - [`server`]: what every request stands on: the settings, TLS, the PROXY protocol,
//!   the drain, header names and the one rule for reading a header, request ids,
//!   OpenTelemetry traces (the server span, `traceresponse`, OTLP export with its
//!   counts, what is exported and what the log lines leave out). Its settings hold the `[server.cors]` section, whose type is
//!   `edge::cors`'s.

pub mod access;
pub mod edge;
pub mod error;
pub mod input;
pub mod limits;
pub mod probe;
pub mod routes;
pub mod server;
pub mod startup;
pub mod state;
