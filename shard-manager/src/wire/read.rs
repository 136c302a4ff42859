//! A point read, and a replica's replay position (for read-your-writes), each one
//! statement in one round trip, read by the request's own task.

use postgres_protocol::message::backend::DataRowBody;

use super::codec::columns::Columns;
use super::codec::values::Param;
use super::conn::WireConn;
use super::error::WireError;
use super::statements::{self, FIND, REPLAY_WAL};
use crate::store::Record;

/// One record by its full identity, from a server that serves `slot` (SG001 if the
/// shard does not own it), with the `FindOne` statement (`store::find_sql`).
pub async fn find(
    conn: &mut WireConn,
    table: &str,
    (key, slot): (&str, i32),
    id: &str,
) -> Result<Option<Record>, WireError> {
    let params = [
        Param::Int4(slot),
        Param::Text(table),
        Param::Text(key),
        Param::Text(id),
    ];
    let rows = statements::run(conn, FIND, |conn| conn.bind_execute(FIND, &params)).await?;
    rows.first().map(record).transpose()
}

/// A row of `Record`'s columns, in its field order (the point read's and the list's).
/// A value that does not decode names the record and its column.
pub(super) fn record(row: &DataRowBody) -> Result<Record, WireError> {
    record_from(&mut Columns::new(row))
}

/// `Record`'s columns, read on from where `row` is.
pub(super) fn record_from(row: &mut Columns<'_>) -> Result<Record, WireError> {
    let table_name = row.text()?;
    let shard_key = row.text()?;
    let id = row.text()?;
    let at = |column| {
        let record = (table_name.as_str(), shard_key.as_str(), id.as_str());
        move |e: WireError| e.in_record(record, column)
    };
    let slot = row.int4().map_err(at("slot"))?;
    let data = row.jsonb().map_err(at("data"))?;
    let version = row.int8().map_err(at("version"))?;
    let created_at = row.timestamptz().map_err(at("created_at"))?;
    let updated_at = row.timestamptz().map_err(at("updated_at"))?;
    Ok(Record {
        table_name,
        shard_key,
        id,
        slot,
        data,
        version,
        created_at,
        updated_at,
    })
}

/// The server's WAL replay position (None on a primary), as `store::replay_wal`.
pub async fn replay_wal(conn: &mut WireConn) -> Result<Option<String>, WireError> {
    let rows = statements::run(conn, REPLAY_WAL, |conn| conn.bind_execute(REPLAY_WAL, &[])).await?;
    let row = rows
        .first()
        .ok_or_else(|| WireError::Protocol("the replay position came back without a row".into()))?;
    Columns::new(row).nullable_text()
}
