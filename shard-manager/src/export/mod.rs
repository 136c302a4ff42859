//! Export: every record of one table, from every shard, a page at a time, written out
//! as NDJSON or CSV by the gateway (`GET /api/export`) and by `shard-admin export`.
//!
//! An export never repeats or skips a record that exists throughout it: each shard is
//! read in keyset order `(shard_key, id)` (which a write never changes), only the slots
//! the shard owns, and every page says, in its own snapshot, what the shard owned. A
//! change of ownership between pages (a slot moving) ends the export with
//! [`ExportError::OwnershipChanged`] (or, in a gateway, [`ExportError::MapChanged`]
//! when its map moves on) rather than let it read a slot twice or miss it. Memory is
//! bounded: at most one page per shard is held (the first pages, read before anything
//! is sent so that a shard down fails the export before it starts), then one page.
//!
//! ## Layout
//! - [`run`]: [`Export`], the pages of every shard in turn.
//! - [`format`]: [`Format`]: a record as an NDJSON line or a CSV row (RFC 4180), its
//!   cells kept from running as spreadsheet formulas unless asked raw ([`CsvCells`]).
//! - [`error`]: [`ExportError`], why an export stopped.

pub mod error;
pub mod format;
pub mod run;

pub use error::ExportError;
pub use format::{CsvCells, Format};
pub use run::{Export, ExportSpec, ShardPage};
