//! A delete in one round trip with one flush from the server (see `commit`).

use postgres_protocol::message::backend::DataRowBody;

use super::commit::committed;
use super::group::{Framed, Rows};
use crate::store::CommitPosition;
use crate::wire::codec::columns::Columns;
use crate::wire::codec::values::Param;
use crate::wire::error::WireError;
use crate::wire::statements::DELETE;

/// Deletes one record by its full identity on the shard that owns `slot` (SG001
/// otherwise), as `super::idempotent::delete_idempotent` does without a key. Returns the version
/// the deletion took (from the shard's sequence, taken under the row lock, so newer
/// than every version the record had), or None when there was no record; and what the
/// primary says once that has committed (see [`CommitPosition`]).
pub async fn delete(
    conn: &mut crate::wire::WireConn,
    table: &str,
    (key, slot): (&str, i32),
    id: &str,
) -> Result<(Option<i64>, CommitPosition), WireError> {
    let (rows, position) = committed(conn, DELETE, &params(table, (key, slot), id)).await?;
    Ok((deleted(&rows)?, position))
}

/// The delete, to join a group commit (see `group`).
pub fn delete_framed(table: &str, (key, slot): (&str, i32), id: &str) -> Result<Framed, WireError> {
    Framed::new(
        DELETE,
        &params(table, (key, slot), id),
        slot,
        (table, key, id),
    )
}

/// What a delete that joined a group did: the deletion's version, or None.
pub fn delete_in_group(rows: Rows) -> Result<Option<i64>, WireError> {
    deleted(&rows.0)
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
