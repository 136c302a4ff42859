//! Opening a wire connection: where and as whom ([`Target`]), the socket plain or TLS
//! (`database.sslmode`), the startup message and signing in.
//!
//! - `target`: [`Target`], where and as whom a connection signs in.
//! - [`startup`]: [`connect`]: TCP, TLS, startup, signing in.
//! - `auth`: SCRAM-SHA-256 with the server's proof checked; a cleartext password or MD5
//!   only when `database.allow_insecure_auth` allows them.
//! - `tls`: TLS to PostgreSQL (disable, require, verify-full); `stream`: the socket,
//!   plain or TLS.

mod auth;
pub mod startup;
pub(super) mod stream;
mod target;
mod tls;

pub use startup::connect;
pub use target::Target;
pub use tls::tls_config;
