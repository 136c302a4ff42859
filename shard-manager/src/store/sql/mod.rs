//! The text of every statement the request path sends, rendered once per process.
//!
//! - `find`: a point read's statement, with its text fixed (the hottest query).
//! - [`records`]: the list statement's builder, and the health and upkeep statements.
//! - `expressions`: the few SQL expressions diesel has no word for, written so that every
//!   statement stays prepared.
//! - `idempotent_write`: each write's statement with its idempotency entry (a bulk write's
//!   records each with an entry of their own).
//! - `claim`: a key's claim at its home slot.
//! - [`wire_statements`]: the wire client's statements as text.
//! - [`export`]: an export's page: a table in keyset order, with the shard's ownership.
//! - [`schema`]: diesel's table definitions.

mod claim;
pub mod export;
pub(crate) mod expressions;
mod find;
mod idempotent_write;
pub mod records;
pub mod schema;
pub mod wire_statements;
