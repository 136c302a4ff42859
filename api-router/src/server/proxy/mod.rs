//! The real client address behind a load balancer: the PROXY protocol, believed only
//! from `server.trusted_proxies` (empty by default: no peer may declare another
//! client, and a PROXY line is not read at all).
//!
//! ## Layout
//! - [`header`]: the PROXY protocol header, v1 and v2 (pure).
//! - [`trusted`]: the trusted proxies' addresses (CIDR blocks).
//! - [`serve`]: the HTTP server that reads the header of a trusted peer's connection and
//!   serves the request as coming from the client it declares.

pub mod header;
pub mod serve;
pub mod trusted;

pub use serve::Via;
pub use trusted::TrustedProxies;
