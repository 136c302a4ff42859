//! PostgreSQL's binary format both ways, and the buffers it travels in.
//!
//! - `values`: binary parameters (with arrays for a bulk group).
//! - `columns`: binary columns read from a row, required or nullable.
//! - `buffers`: the rule that shrinks a buffer back after a large message.

pub(super) mod buffers;
pub(super) mod columns;
pub(super) mod values;
