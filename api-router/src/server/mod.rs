//! The HTTP server under the API: what every request stands on before any key, limit
//! or error is known. Of the rest of the crate it uses only [`crate::edge::cors`], whose
//! `CorsSettings` is the `[server.cors]` section of its settings; every other module
//! may use it.
//!
//! ## Layout
//! - [`settings`]: the `[server]` (with `[server.cors]` and `[server.tls]`),
//!   `[analytics]`, `[auth]`, `[limits]` and `[tracing]` sections plus the cluster
//!   settings, layered.
//! - [`tls`]: HTTPS with rustls when `[server.tls]` names a certificate and key.
//! - [`listener`]: the listening socket, with a backlog for a burst of connections.
//! - [`proxy`]: the real client behind a load balancer (PROXY protocol from trusted
//!   proxies only).
//! - [`drain`]: stopping without dropping a request (readiness 503 first, then stop).
//! - [`headers`]: every header name, and the one rule for reading a header.
//! - [`request_id`]: `x-request-id` echo/generation, in logs and problem bodies.
//! - [`stall`]: cutting off a streamed answer's client that stopped reading (each
//!   connection's socket, recorded on connect).
//! - [`traces`]: OpenTelemetry traces: the `[tracing]` settings, OTLP export with its
//!   bounded queue and counts, the HTTP server span with W3C context in and out, and
//!   what the gateway exports and logs through the `telemetry` crate's subscriber.

pub mod drain;
pub mod headers;
pub mod listener;
pub mod proxy;
pub mod request_id;
pub mod settings;
pub mod stall;
pub mod tls;
pub mod traces;
