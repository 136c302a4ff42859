//! Reading a request: headers parsed once into domain types, JSON bodies read within
//! their limits, and the `Idempotency-Key` of a write. Handlers get typed values from
//! here; every refusal is an [`ApiError`](crate::error::ApiError) naming what was wrong.
//!
//! ## Layout
//! - [`extract`]: header extractors, each parsed once into a domain type; `x-shard-key`
//!   becomes a routed key ([`extract::Routed`]) here and nowhere else.
//! - [`json_body`]: [`json_body::BoundedJson`], bodies read within a byte limit and a
//!   deadline; [`json_limits`] parses them within depth, value and record limits.
//! - [`body`]: the record endpoints' JSON bodies and query parameters, request and
//!   response, in one place (the OpenAPI schemas come from them).
//! - [`transaction`]: `POST /api/transaction`'s body and answer; its operations parsed,
//!   each problem naming the operation by its index.
//! - [`conditional`]: a record's `ETag` (its identity and version), and the `If-Match`
//!   and `If-None-Match` headers that compare with it.
//! - [`accept`]: whether the `Accept` header names a media type.
//! - [`idempotency`]: the `Idempotency-Key` header and what a write sent with it keeps
//!   (each key written once; a retry gets the first answer).

pub mod accept;
pub mod body;
pub mod conditional;
pub mod extract;
pub mod idempotency;
pub mod json_body;
pub mod json_limits;
pub mod transaction;
