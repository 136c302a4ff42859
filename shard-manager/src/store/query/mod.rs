//! A query over one table's records, typed and validated once at the edge: conditions
//! on dotted JSON paths, a sort, the fields to return, a page size and the cursor of
//! the next page. Nothing here is SQL (that is [`super::query_statement`]); this module
//! says what a query means.
//!
//! ## The order of values
//! A sort compares, for each sort field, the value at its path by three keys, in turn:
//! 1. its type's rank: missing 0, `null` 1, string 2, number 3, boolean 4, array 5,
//!    object 6 (PostgreSQL's `jsonb` order of types, with a missing field first);
//! 2. for numbers, the number (exactly, as `numeric`: 2 < 10, 1.0 = 1);
//! 3. for strings, the string in the "C" collation (byte order of its UTF-8); for
//!    booleans `false` < `true`; for arrays and objects, their `jsonb` text in "C".
//!    Only the first [`SORTED_TEXT_CHARS`] characters of a text count (as MySQL's
//!    `max_sort_length`): texts alike that far are tied, and the tie is broken as any.
//!    So a cursor, which holds the last row's sort values, is bounded whatever the
//!    records hold, and a page ends after a long value as after any other.
//!
//! `desc` reverses all three. Ties are broken by the record's shard key, then its id,
//! both ascending in "C", whatever the direction: a query's order is total, so a page's
//! last row says exactly where the next page starts, on every shard.
//!
//! ## Conditions
//! `gt`, `gte`, `lt`, `lte` and `prefix` match only values of their operand's type (a
//! number compares with numbers, a string with strings in "C"); `eq` and `in` match
//! equal JSON (numbers by value); `ne` and `nin` match every record `eq` and `in` do
//! not, a missing field included; `exists` whether the path is present (a JSON `null`
//! is present); `contains` JSON containment (`@>`: an array contains the elements
//! given, an object the members given). A path segment that is a whole number indexes
//! an array (negative from its end), as `#>` does.
//!
//! ## Layout
//! - [`path`]: a field's dotted path, and the value it names in a document.
//! - [`condition`]: operators and operands, and what a record matches.
//! - [`order`]: sort fields, each row's sort values, and how two rows compare.
//! - [`request`]: a whole query, validated, and its identity.
//! - [`cursor`]: where the next page starts, as the text a client passes back.
//! - [`projection`]: the fields a query returns.
//! - [`error`]: why a query is refused.

mod condition;
mod cursor;
mod error;
mod order;
mod path;
mod projection;
mod request;

pub use condition::{Condition, Operand, Operator};
pub use cursor::QueryCursor;
pub use error::QueryError;
pub use order::{
    compare_numeric, compare_positions, Direction, Position, QueryRow, SortField, SortValue,
};
pub use path::FieldPath;
pub use projection::project;
pub use request::{CountMode, Query};

/// The most conditions one query may have.
pub const MAX_CONDITIONS: usize = 20;
/// The most sort fields.
pub const MAX_SORT_FIELDS: usize = 4;
/// The most fields a query may return.
pub const MAX_FIELDS: usize = 32;
/// The most values of an `in` or `nin`.
pub const MAX_LIST_VALUES: usize = 100;
/// The most segments of a path, and the most bytes of one.
pub const MAX_PATH_SEGMENTS: usize = 8;
pub const MAX_SEGMENT_BYTES: usize = 64;
/// How many characters of a string (or of an array's or object's text) a sort
/// compares: see the module doc.
pub const SORTED_TEXT_CHARS: usize = 1024;
/// The longest cursor accepted, in characters of its text: the hex of its JSON with
/// every sort field's text at [`SORTED_TEXT_CHARS`] characters, each escaped at most as
/// `\uXXXX`, and the longest shard key and id.
pub const MAX_CURSOR_TEXT: usize = 64 << 10;
/// The largest page, in records. The real bound is in bytes: a page stops at the
/// answer's byte budget (`server.max_read_bytes`) whatever its limit, so a page of
/// small records may be this large and a page of large ones is cut short.
pub const MAX_LIMIT: u32 = 10_000;
