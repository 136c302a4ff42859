//! The SQL the request path runs, parameterised, and the rows it reads and writes.
//!
//! ## Layout
//! - [`records`]: the list statement's builder, and the text of the health and upkeep
//!   statements (WAL positions, the cache epoch, counts and sizes, the sweep). Every
//!   statement runs on the wire client, `crate::wire`.
//! - [`remembered`]: what writes sent with an idempotency key answer: the answer stored
//!   by the write's own statement, or an earlier answer instead of a second write; its
//!   statements are in `remembered_sql` (a bulk write's records each with an entry of
//!   their own), a key's claim at its home slot in `claim_sql`, and [`remember`] is the
//!   key, its fingerprint and its home.
//! - [`row`]: [`Record`], [`NewRecord`], [`Upserted`]: rows as stored.
//! - [`raw_json`]: [`RawJson`], a stored document kept as text from row to client.
//! - `jsonb_numbers`: which JSON numbers `jsonb` can hold (a document kept as text keeps
//!   every digit).
//! - [`document`]: [`Document`] and [`RecordId`]: a record's JSON and id, validated once.
//! - [`table`]: [`TableName`], the allowed logical tables.
//! - [`cursor`]: list queries: JSON filter, page size, byte budget, keyset cursor.
//! - [`page`]: [`Page`] and [`Budget`]: a page of a list, stopped at its byte budget.
//! - `find_sql`: a point read's statement, with its text fixed (the hottest query).
//! - `fixed_sql`: the few SQL expressions diesel has no word for, written so that every
//!   statement stays prepared.
//! - `statement_text`: the wire client's statements (every write, with or without an
//!   idempotency key; the point read; the list in its eight shapes) as text.
//! - [`schema`]: diesel's table definitions.
//! - [`migrations`]: the embedded migrations every shard must have, and which a server
//!   has applied.

mod claim_sql;
pub mod cursor;
pub mod document;
mod find_sql;
mod fixed_sql;
mod jsonb_numbers;
pub mod member_name;
pub mod migrations;
pub mod page;
pub mod raw_json;
pub mod records;
pub mod remember;
pub mod remembered;
mod remembered_sql;
pub mod row;
pub mod schema;
mod statement_text;
pub mod table;

pub use cursor::{Cursor, CursorError, ListQuery};
pub use document::{Document, RecordError, RecordId};
pub(crate) use fixed_sql::UpsertMany;
pub use member_name::NameIs;
pub use page::{record_bytes, Budget, Page};
pub use raw_json::RawJson;

pub use remember::Remember;
pub use remembered::{
    bulk_outcome, delete_outcome, upsert_outcome, AnswerError, Answered, BulkRow, DeleteRow,
    GroupOutcome, Remembered, UpsertRow, ENTRY_TABLES,
};
pub use row::{AfterCommit, NewRecord, Record, Upserted, WrittenRow};
pub use statement_text::{wire_statements, ListShape, WireStatements};
pub use table::{TableName, Tables, UnknownTable};
