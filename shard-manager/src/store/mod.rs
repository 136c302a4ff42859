//! The SQL the request path runs, parameterised, and the rows it reads and writes.
//!
//! ## Layout
//! - [`statements`]: every statement's text, as plain SQL beside what it binds and
//!   returns: the point read, the list in its eight shapes, each write with or without
//!   an idempotency key, a key's claim, a transaction's parts, an export's page, the
//!   health and upkeep statements.
//! - [`identity`]: a primary's [`Identity`] behind a service address (the row of
//!   [`statements::identity`]), and the [`Verdict`] on a server seen through it, pure.
//! - [`idempotent_answer`]: [`IdempotentOutcome`], what writes sent with an idempotency
//!   key answer: the answer stored by the write's own statement, or an earlier answer
//!   instead of a second write.
//! - [`idempotency_key`]: [`IdempotencyKey`], the key a write is sent with, its
//!   fingerprint and its home; the ids minted for records sent without one, keyed with
//!   the cluster's [`IdSecret`].
//! - [`precondition`]: [`Precondition`], what a conditional write or delete expects of
//!   the record's version, and [`Conditional`], whether it held.
//! - [`row`]: [`Record`], [`NewRecord`], [`Upserted`]: rows as stored.
//! - [`raw_json`]: [`RawJson`], a stored document kept as text from row to client.
//! - `jsonb_numbers`: which JSON numbers `jsonb` can hold (a document kept as text keeps
//!   every digit).
//! - [`document`]: [`Document`] and [`RecordId`]: a record's JSON and id, validated once.
//! - [`table`]: [`TableName`], the allowed logical tables.
//! - [`cursor`]: list queries: JSON filter, page size, byte budget, keyset cursor.
//! - [`page`]: [`Page`] and [`Budget`]: a page of a list, stopped at its byte budget.
//! - [`query`]: a query (`POST /api/query`) typed and validated: conditions on JSON
//!   paths, a sort, fields, the page and its cursor; the order of values it sorts by.
//! - [`query_statement`]: a query's SQL, built from its typed parts, every value bound
//!   (paths written as literals, so an index on them serves), and its plan.
//! - [`query_index`]: an index for queries on some fields of a table: its name, the SQL
//!   that builds, drops and inspects it on a shard.
//! - [`answer_budget`]: [`AnswerBudget`]: an answer of many point reads, held to the
//!   read budget, duplicates counted.
//! - [`member_name`]: a JSON member's name, checked.
//! - [`migrations`]: the migrations every shard must have (their names, listed from
//!   `migrations/` at build time), and which a server lacks.

pub mod answer_budget;
pub mod cursor;
pub mod document;
pub mod idempotency_key;
pub mod idempotent_answer;
pub mod identity;
mod jsonb_numbers;
pub mod member_name;
pub mod migrations;
pub mod page;
pub mod precondition;
pub mod query;
pub mod query_index;
pub mod query_statement;
pub mod raw_json;
pub mod row;
pub mod statements;
pub mod table;

pub use answer_budget::{AnswerBudget, OverBudget};
pub use cursor::{Cursor, CursorError, ListQuery};
pub use document::{Document, RecordError, RecordId};
pub use identity::{verdict, Identity, Seen, Verdict};
pub use member_name::NameIs;
pub use page::{record_bytes, Budget, Page};
pub use precondition::{Conditional, Precondition};
pub use raw_json::RawJson;

pub use idempotency_key::{minted_id, IdSecret, IdempotencyKey, NoIdSecret};
pub use idempotent_answer::{
    bulk_outcome, delete_outcome, upsert_outcome, AnswerError, Answered, BulkRow, DeleteRow,
    GroupOutcome, IdempotentOutcome, UpsertRow, ENTRY_TABLES,
};
pub use row::{CommitPosition, NewRecord, Record, Upserted, WrittenRow};
pub use statements::ListShape;
pub use table::{TableName, Tables, UnknownTable};
