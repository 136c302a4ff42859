//! WAL positions: what a write hands back ([`WriteToken`]) and what a read must reflect
//! ([`Consistency`]).
//!
//! ## Layout
//! - [`lsn`]: [`Lsn`] (a WAL position) and [`WriteToken`] (shard + position).
//! - [`consistency`]: [`Consistency`], parsed once at the edge.

pub mod consistency;
pub mod lsn;

pub use consistency::{Consistency, ConsistencyError};
pub use lsn::{Lsn, TokenError, WriteToken};
