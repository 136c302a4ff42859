//! A single write in one round trip with one flush from the server: `BEGIN`, the upsert,
//! `COMMIT`, and the statement that reads the WAL position and the cache epoch, all
//! behind one Sync.
//!
//! The diesel-async path sends the upsert and that statement each with its own Sync
//! (tokio-postgres ends every statement with one): PostgreSQL flushes after each, so the
//! gateway woke twice per write. Here the explicit transaction makes the commit happen
//! at `COMMIT`, before the last statement runs, so the position read is past the
//! write's commit record, as the read-your-writes token needs; and the server answers
//! everything in one flush.

use postgres_protocol::message::frontend;

use super::conn::WireConn;
use super::error::WireError;
use super::statements::{AFTER_COMMIT, BEGIN, COMMIT, UPSERT};
use super::values::{Columns, Param, BINARY};
use crate::store::{AfterCommit, NewRecord, Upserted};

/// Inserts the record, or replaces its data and bumps its version, and reads what the
/// primary says once that has committed (see [`AfterCommit`]).
///
/// When PostgreSQL refuses (the slot is not this shard's, a statement timeout), nothing
/// was written: the transaction is rolled back and the refusal returned, with the
/// connection reusable. A lost connection leaves it unusable (the pool drops it).
pub async fn upsert(
    conn: &mut WireConn,
    rec: &NewRecord<'_>,
) -> Result<(Upserted, AfterCommit), WireError> {
    conn.start();
    execute(conn, BEGIN, &[])?;
    execute(
        conn,
        UPSERT,
        &[
            Param::Text(rec.table_name),
            Param::Text(rec.shard_key),
            Param::Text(rec.id),
            Param::Int4(rec.slot),
            Param::Jsonb(rec.data.get()),
            Param::Int4(rec.slot),
        ],
    )?;
    execute(conn, COMMIT, &[])?;
    execute(conn, AFTER_COMMIT, &[])?;
    frontend::sync(&mut conn.out);
    conn.flush().await?;
    let ended = conn.until_ready(None).await?;
    if let Some(error) = ended.error {
        // Refused inside the transaction: the server skipped the rest, and the
        // transaction must be ended before the connection is used again.
        if ended.status != b'I' {
            conn.simple("ROLLBACK").await?;
        }
        conn.done();
        return Err(error.into());
    }
    let [row, after] = ended.rows.as_slice() else {
        return Err(WireError::Protocol(format!(
            "a write answered {} rows, not 2",
            ended.rows.len()
        )));
    };
    let mut row = Columns::new(row);
    let upserted = Upserted {
        version: row.int8()?,
        created_at: row.timestamptz()?,
        updated_at: row.timestamptz()?,
        created: row.boolean()?,
    };
    let mut after = Columns::new(after);
    let after = AfterCommit {
        wal: after.text()?,
        cache_epoch: after.nullable_int8()?,
    };
    conn.done();
    Ok((upserted, after))
}

/// Buffers a Bind of `statement` with `params` and an Execute of it; binary throughout.
fn execute(conn: &mut WireConn, statement: &str, params: &[Param<'_>]) -> Result<(), WireError> {
    frontend::bind(
        "",
        statement,
        [BINARY],
        params.iter().copied(),
        |param, buf| param.write(buf),
        [BINARY],
        &mut conn.out,
    )
    .map_err(|e| match e {
        frontend::BindError::Conversion(e) => WireError::Protocol(e.to_string()),
        frontend::BindError::Serialization(e) => WireError::Io(e),
    })?;
    frontend::execute("", 0, &mut conn.out)?;
    Ok(())
}
