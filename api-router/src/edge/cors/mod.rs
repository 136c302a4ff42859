//! Cross-origin requests (CORS): off unless `[server.cors] allowed_origins` names
//! origins. Off, the gateway sends no `Access-Control-*` header and an `OPTIONS`
//! request is answered as any other unknown method. On, `actix-cors` answers preflights
//! before the access checks (a preflight carries no key), and adds the allow and expose
//! headers to the answers of allowed origins; a request from another origin is served
//! without them, so the browser keeps its answer from the page.
//!
//! ## Layout
//! - [`settings`]: [`CorsSettings`], with the start-up check of every origin, method
//!   and header name, and the `actix-cors` middleware it builds.
//! - [`refusal`]: a refused preflight as a problem+json answer naming what was refused.

pub mod refusal;
pub mod settings;

pub use refusal::refusals;
pub use settings::{CorsConfigError, CorsSettings};
