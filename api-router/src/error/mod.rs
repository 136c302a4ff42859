//! The one mapping of failures to HTTP: every error becomes
//! `application/problem+json` (RFC 9457) with status, title, detail and request id.
//! Each [`ApiError`] variant is mapped once, in [`ApiError::kind`], to its status, slug
//! and title; the analytics class follows from the status.
//!
//! ## Layout
//! - [`api_error`]: [`ApiError`], everything a request can fail with, and what converts
//!   into it.
//! - [`kind`]: each variant's status, problem slug and title ([`Kind`]), every one once.
//! - [`problem`]: the problem+json body ([`Problem`]) and the answer an [`ApiError`]
//!   becomes: what the client may read, the headers, the note for analytics
//!   ([`ErrorNote`]), and the cause chain in the logs.
//! - [`extractors`]: the answers to bodies and queries the extractors refuse.

mod api_error;
mod extractors;
mod kind;
mod problem;

pub use api_error::ApiError;
pub use extractors::{json_error, query_error};
pub use kind::Kind;
pub use problem::{ErrorNote, Problem};
