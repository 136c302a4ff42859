//! Fair limits per API key: a request rate, and a cap on the key's queries running at
//! once on one shard, so one hot client can neither flood a gateway nor take a shard's
//! whole connection pool.
//!
//! Each key follows the gateway's `[limits]` unless it has limits of its own
//! (`shard-admin keys limit`, stored with the key; gateways follow changes within a
//! second). The rate is checked right after the key ([`crate::access::gate::require`]):
//! past it the answer is 429 `rate-limited` at once. The concurrency cap is taken by the
//! record handlers around the cluster call, one permit per shard the request touches
//! (a fan-out list takes one on every shard); past it a request waits up to
//! `limits.concurrency_wait_ms`, then gets 429 `concurrency-limited`. Both 429s carry
//! `Retry-After`; every answer to a key with a rate carries `RateLimit-Policy` and
//! `RateLimit` (IETF draft-ietf-httpapi-ratelimit-headers-10/11). Anonymous callers
//! (no key exists: loopback clients in protected mode) are not limited.
//!
//! Each gateway counts on its own: behind N gateways a key may make N times its rate
//! and hold N times its cap on a shard.
//!
//! ## Layout
//! - [`policy`]: a key's effective limits, from its own and `[limits]` (pure).
//! - [`headers`]: the `RateLimit-Policy`, `RateLimit` and `Retry-After` values (pure).
//! - [`key`]: [`KeyLimiter`], one key's bucket, per-shard semaphores and refusal counts.
//! - [`registry`]: [`Limits`], the gateway's limiters by key name, and the [`Quota`]
//!   extractor handlers take permits with.
//! - [`error`]: [`Limited`], why a request was refused (429 in `crate::error`).
//! - [`exports`]: [`ExportSlots`], the gateway's cap on exports streaming at once,
//!   whoever asks (503 `exports-busy`).

pub mod error;
pub mod exports;
pub mod headers;
pub mod key;
pub mod policy;
pub mod registry;

pub use error::Limited;
pub use exports::{ExportSlot, ExportSlots, ExportsBusy};
pub use key::{KeyLimiter, Permits, RateCheck};
pub use policy::{Effective, RatePolicy};
pub use registry::{Limits, Quota};
