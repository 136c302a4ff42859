//! Access control: API keys with scopes, and protected mode.
//!
//! Every request first passes [`gate::protect`]: with no live key in the metadata
//! database, only loopback clients are served (403 `protected-mode` otherwise). Each
//! route that needs a scope ([`policy::need`]) is then wrapped in [`gate::require`]:
//! once a key exists every client, loopback too, sends `Authorization: Bearer <key>`
//! (401 without a valid one, 403 without the scope, 429 past the key's rate: see
//! `crate::limits`, whose limiter it leaves in the request). The keys are held in
//! memory and followed from the metadata database (`control_plane::keys`): no query
//! per request.
//! A gateway that started while that database was down serves loopback clients only
//! (others get 503 `keys-unavailable`) until it has read the keys once.
//!
//! ## Layout
//! - [`policy`]: which scope each route needs (routes and OpenAPI read it).
//! - [`bearer`]: the `Authorization` header, read strictly.
//! - [`gate`]: [`Access`] and the two middlewares.
//! - [`audit`]: the audit line of every admin request: who, from where, what, when, outcome.
//! - [`caller`]: [`Caller`], the extractor handlers check tables with.
//! - [`protected`]: the start-up refusal beyond loopback without keys.

pub mod audit;
pub mod bearer;
pub mod caller;
pub mod gate;
pub mod policy;
pub mod protected;

pub use caller::Caller;
pub use gate::Access;
pub use policy::Need;
