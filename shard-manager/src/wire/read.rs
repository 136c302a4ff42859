//! A point read, and a replica's replay position (for read-your-writes), each one
//! statement in one round trip, read by the request's own task.

use postgres_protocol::message::backend::DataRowBody;

use super::columns::Columns;
use super::conn::WireConn;
use super::error::WireError;
use super::statements::{self, FIND, REPLAY_WAL};
use super::values::Param;
use crate::store::Record;

/// One record by its full identity, from a server that serves `slot` (SG001 if the
/// shard does not own it), with the `FindOne` statement (`store::find_sql`).
pub async fn find(
    conn: &mut WireConn,
    table: &str,
    (key, slot): (&str, i32),
    id: &str,
) -> Result<Option<Record>, WireError> {
    statements::start(conn)?;
    conn.bind_execute(
        FIND,
        &[
            Param::Int4(slot),
            Param::Text(table),
            Param::Text(key),
            Param::Text(id),
        ],
    )?;
    let rows = conn.exchange().await?;
    rows.first().map(record).transpose()
}

/// A row of `Record`'s columns, in its field order (the point read's and the list's).
pub(super) fn record(row: &DataRowBody) -> Result<Record, WireError> {
    let mut row = Columns::new(row);
    Ok(Record {
        table_name: row.text()?,
        shard_key: row.text()?,
        id: row.text()?,
        slot: row.int4()?,
        data: row.jsonb()?,
        version: row.int8()?,
        created_at: row.timestamptz()?,
        updated_at: row.timestamptz()?,
    })
}

/// The server's WAL replay position (None on a primary), as `store::replay_wal`.
pub async fn replay_wal(conn: &mut WireConn) -> Result<Option<String>, WireError> {
    statements::start(conn)?;
    conn.bind_execute(REPLAY_WAL, &[])?;
    let rows = conn.exchange().await?;
    let row = rows
        .first()
        .ok_or_else(|| WireError::Protocol("the replay position came back without a row".into()))?;
    Columns::new(row).nullable_text()
}
