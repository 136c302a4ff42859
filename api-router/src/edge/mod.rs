//! The middleware around every request: the `Host` check, CORS, the security headers
//! on every answer and the analytics observer, each wired once in [`crate::startup`].
//! (Two more wrap every request from lower down, in [`crate::server`]: the request id,
//! which every problem body reads, and the PROXY protocol, which the access gate reads.)
//!
//! ## Layout
//! - [`security_headers`]: `nosniff`, frame and referrer policies, CSP, `no-store`, HSTS
//!   under TLS, on every answer (the outermost middleware).
//! - [`guard`]: the `Host` allow-list (421 for other names: no DNS rebinding).
//! - [`cors`]: cross-origin requests, off unless `[server.cors]` names origins.
//! - [`observe`]: the analytics middleware (endpoint, shard, role, outcome, latency).

pub mod cors;
pub mod guard;
pub mod observe;
pub mod security_headers;
