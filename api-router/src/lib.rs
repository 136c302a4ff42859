//! # api-router
//!
//! Shardgate's HTTP gateway. It parses and validates every request at the edge, asks
//! `shard-manager` for the work in domain terms, and maps every failure to one
//! `application/problem+json` answer. No SQL and no pool here.
//!
//! ## Layout
//! - [`settings`]: the `[server]` section plus the cluster settings, layered.
//! - [`startup`]: [`Application::build`](startup::Application::build) binds the listener
//!   (port 0 works) and wires state, middleware and routes.
//! - [`state`]: [`AppState`](state::AppState), shared explicitly with every handler.
//! - [`routes`]: one file per endpoint family.
//! - [`extract`]: header extractors (`x-shard-key`, `x-consistency`).
//! - [`error`]: [`ApiError`](error::ApiError), the one mapping to HTTP.
//! - [`request_id`]: `x-request-id` echo/generation, in logs and problem bodies.
//! - [`observe`]: the analytics middleware.
//! - [`openapi`]: the OpenAPI document behind Swagger UI.
//! - [`telemetry`]: `tracing` set-up.

pub mod error;
pub mod extract;
pub mod observe;
pub mod openapi;
pub mod request_id;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
