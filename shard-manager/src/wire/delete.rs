//! A delete in one round trip with one flush from the server (see `commit`).

use super::commit::committed;
use super::error::WireError;
use super::statements::DELETE;
use super::values::{Columns, Param};
use crate::store::AfterCommit;

/// Deletes one record by its full identity on the shard that owns `slot` (SG001
/// otherwise), as `store::delete_remembered` does without a key. Returns the version
/// the deletion took (from the shard's sequence, taken under the row lock, so newer
/// than every version the record had), or None when there was no record; and what the
/// primary says once that has committed (see [`AfterCommit`]).
pub async fn delete(
    conn: &mut super::WireConn,
    table: &str,
    (key, slot): (&str, i32),
    id: &str,
) -> Result<(Option<i64>, AfterCommit), WireError> {
    let params = [
        Param::Int4(slot),
        Param::Text(table),
        Param::Text(key),
        Param::Text(id),
    ];
    let (rows, after) = committed(conn, DELETE, &params).await?;
    let version = match rows.as_slice() {
        [] => None,
        [row] => Some(Columns::new(row).int8()?),
        more => {
            return Err(WireError::Protocol(format!(
                "a delete answered {} rows, not 0 or 1",
                more.len()
            )))
        }
    };
    Ok((version, after))
}
