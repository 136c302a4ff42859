//! A delete, joining its primary's group commit (see `group`).

use postgres_protocol::message::backend::DataRowBody;

use super::encoded::{EncodedWrite, Framed, Rows};
use crate::wire::codec::columns::Columns;
use crate::wire::codec::values::Param;
use crate::wire::error::WireError;
use crate::wire::statements::DELETE;

/// Deletes one record by its full identity on the shard that owns `slot` (SG001
/// otherwise), as `super::idempotent::delete_idempotent` does without a key: encoded to
/// join its primary's group commit (see `group`), with what reads its answer: the
/// version the deletion took (from the shard's sequence, taken under the row lock, so
/// newer than every version the record had), or None when there was no record.
pub fn delete(
    table: &str,
    (key, slot): (&str, i32),
    id: &str,
) -> Result<EncodedWrite<Option<i64>>, WireError> {
    let framed = Framed::new(
        DELETE,
        &params(table, (key, slot), id),
        slot,
        (table, key, id),
    )?;
    Ok(EncodedWrite::new(framed, |rows: Rows| deleted(&rows.0)))
}

/// The delete's row, if there was a record.
fn deleted(rows: &[DataRowBody]) -> Result<Option<i64>, WireError> {
    let version = match rows {
        [] => None,
        [row] => Some(Columns::new(row).int8()?),
        more => {
            return Err(WireError::Protocol(format!(
                "a delete answered {} rows, not 0 or 1",
                more.len()
            )))
        }
    };
    Ok(version)
}

/// The delete's binds.
pub(in crate::wire) fn params<'a>(
    table: &'a str,
    (key, slot): (&'a str, i32),
    id: &'a str,
) -> [Param<'a>; 4] {
    [
        Param::Int4(slot),
        Param::Text(table),
        Param::Text(key),
        Param::Text(id),
    ]
}
