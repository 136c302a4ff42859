//! A point read, and a replica's replay position (for read-your-writes), each one
//! statement in one round trip, read by the request's own task; and point reads that
//! arrived together, pipelined in one send ([`find_many`]).

use postgres_protocol::message::backend::DataRowBody;
use postgres_protocol::message::frontend;

use super::codec::columns::Columns;
use super::codec::values::Param;
use super::conn::WireConn;
use super::error::WireError;
use super::statements::{self, FIND, REPLAY_WAL};
use crate::store::Record;

/// One record by its full identity, from a server that serves `slot` (SG001 if the
/// shard does not own it), with the point read's statement (`store::statements::FIND`).
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

/// One point read of a batch: a record's full identity and its key's slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointRead {
    pub table: String,
    pub key: String,
    pub slot: i32,
    pub id: String,
}

/// Point reads pipelined on one connection: every read's Bind, Execute and Sync leave
/// in one send, and the answers come back in order. Each read has its own Sync, so its
/// own implicit transaction: one read's refusal (a slot the server does not serve) is
/// that read's answer alone. The outer error is the connection's (lost, or its
/// statements could not be prepared): every read failed alike. Reads refused because
/// the prepared statements went stale are prepared and sent once more.
pub async fn find_many(
    conn: &mut WireConn,
    reads: &[&PointRead],
) -> Result<Vec<Result<Option<Record>, WireError>>, WireError> {
    let mut answers = pipelined(conn, reads).await?;
    let stale: Vec<usize> = answers
        .iter()
        .enumerate()
        .filter(|(_, a)| matches!(a, Err(WireError::Server(e)) if e.invalidates_statements()))
        .map(|(i, _)| i)
        .collect();
    if !stale.is_empty() {
        tracing::info!(
            reads = stale.len(),
            "prepared statements are stale; preparing them again"
        );
        let again: Vec<&PointRead> = stale.iter().map(|i| reads[*i]).collect();
        let redone = pipelined(conn, &again).await?;
        for (i, answer) in stale.into_iter().zip(redone) {
            answers[i] = answer;
        }
    }
    Ok(answers)
}

/// One send of `reads`, each with its own Sync, and their answers in order.
async fn pipelined(
    conn: &mut WireConn,
    reads: &[&PointRead],
) -> Result<Vec<Result<Option<Record>, WireError>>, WireError> {
    let named = |e: WireError| e.in_statement("find");
    statements::start(conn)?;
    for read in reads {
        let params = [
            Param::Int4(read.slot),
            Param::Text(&read.table),
            Param::Text(&read.key),
            Param::Text(&read.id),
        ];
        conn.bind_execute(FIND, &params)?;
        frontend::sync(&mut conn.out);
    }
    conn.flush().await.map_err(named)?;
    let mut answers = Vec::with_capacity(reads.len());
    let mut parsed = 0;
    for _ in reads {
        let mut first: Option<DataRowBody> = None;
        let ended = conn
            .until_ready(None, &mut |_, row| {
                first.get_or_insert(row);
            })
            .await
            .map_err(named)?;
        parsed += ended.parsed;
        answers.push(match ended.error {
            Some(error) => Err(named(error.into())),
            None => first.as_ref().map(record).transpose(),
        });
    }
    if !conn.prepared {
        if parsed != conn.preparing {
            // Which statements exist here is unknown: the connection stays busy (never
            // reused), and every read fails as the first one did.
            let first = answers.into_iter().find_map(Result::err);
            return Err(first.unwrap_or_else(|| {
                WireError::Protocol("the statements were not all prepared".into())
            }));
        }
        conn.prepared = true;
    }
    if answers
        .iter()
        .any(|a| matches!(a, Err(WireError::Server(e)) if e.invalidates_statements()))
    {
        conn.prepared = false;
        conn.stale = true;
    }
    conn.done();
    Ok(answers)
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
