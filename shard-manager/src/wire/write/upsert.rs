//! Upserts: one record (joining its primary's group commit, see `group`), or one
//! shard's group of a bulk write; each in one round trip with one flush from the
//! server (see `commit`).

use postgres_protocol::message::backend::DataRowBody;

use super::commit::committed;
use super::encoded::{EncodedWrite, Framed, Rows};
use crate::store::{CommitPosition, NewRecord, RawJson, Upserted, WrittenRow};
use crate::wire::codec::columns::Columns;
use crate::wire::codec::values::Param;
use crate::wire::error::WireError;
use crate::wire::statements::{UPSERT, UPSERT_MANY};

/// Inserts the record, or replaces its data and bumps its version: encoded to join its
/// primary's group commit (see `group`), with what reads its one row.
pub fn upsert(rec: &NewRecord<'_>) -> Result<EncodedWrite<Upserted>, WireError> {
    let framed = Framed::new(
        UPSERT,
        &one(rec),
        rec.slot,
        (rec.table_name, rec.shard_key, rec.id),
    )?;
    Ok(EncodedWrite::new(framed, |rows: Rows| upserted(&rows.0)))
}

/// The single upsert's one row.
fn upserted(rows: &[DataRowBody]) -> Result<Upserted, WireError> {
    let [row] = rows else {
        return Err(WireError::Protocol(format!(
            "a write answered {} rows, not 1",
            rows.len()
        )));
    };
    let mut row = Columns::new(row);
    let upserted = Upserted {
        version: row.int8()?,
        created_at: row.timestamptz()?,
        updated_at: row.timestamptz()?,
        created: row.boolean()?,
    };
    Ok(upserted)
}

/// Upserts a group of records (identities unique within the group) in one statement,
/// all or nothing, and reads what the primary says once that has committed. Returns
/// each written row's (shard key, id, version, created, updated), in no particular
/// order.
pub async fn upsert_many(
    conn: &mut crate::wire::WireConn,
    recs: &[NewRecord<'_>],
) -> Result<(Vec<WrittenRow>, CommitPosition), WireError> {
    let columns = RecordColumns::new(recs);
    let (rows, position) = committed(conn, UPSERT_MANY, &many(&columns)).await?;
    let written = rows
        .iter()
        .map(|row| {
            let mut row = Columns::new(row);
            Ok((
                row.text()?,
                row.text()?,
                row.int8()?,
                row.timestamptz()?,
                row.timestamptz()?,
            ))
        })
        .collect::<Result<Vec<WrittenRow>, WireError>>()?;
    Ok((written, position))
}

/// The single upsert's binds.
pub(in crate::wire) fn one<'a>(rec: &'a NewRecord<'a>) -> [Param<'a>; 6] {
    [
        Param::Text(rec.table_name),
        Param::Text(rec.shard_key),
        Param::Text(rec.id),
        Param::Int4(rec.slot),
        Param::Jsonb(rec.data.get()),
        Param::Int4(rec.slot),
    ]
}

/// A group's records as the bulk upsert binds them: one array per column (see
/// `store::statements::UPSERT_MANY`).
#[derive(Debug, Clone)]
pub(in crate::wire) struct RecordColumns<'a> {
    pub(in crate::wire) tables: Vec<&'a str>,
    pub(in crate::wire) keys: Vec<&'a str>,
    pub(in crate::wire) ids: Vec<&'a str>,
    pub(in crate::wire) slots: Vec<i32>,
    pub(in crate::wire) data: Vec<&'a RawJson>,
}

impl<'a> RecordColumns<'a> {
    pub(in crate::wire) fn new(rows: &'a [NewRecord<'a>]) -> Self {
        Self {
            tables: rows.iter().map(|r| r.table_name).collect(),
            keys: rows.iter().map(|r| r.shard_key).collect(),
            ids: rows.iter().map(|r| r.id).collect(),
            slots: rows.iter().map(|r| r.slot).collect(),
            data: rows.iter().map(|r| r.data).collect(),
        }
    }
}

/// The bulk upsert's binds: a group's columns, one array each.
pub(in crate::wire) fn many<'a>(m: &'a RecordColumns<'_>) -> [Param<'a>; 6] {
    [
        Param::Texts(&m.tables),
        Param::Texts(&m.keys),
        Param::Texts(&m.ids),
        Param::Int4s(&m.slots),
        Param::Jsonbs(&m.data),
        Param::Int4s(&m.slots),
    ]
}
