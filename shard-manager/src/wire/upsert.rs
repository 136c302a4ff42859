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

use super::conn::WireConn;
use super::error::WireError;
use super::statements::{self, AFTER_COMMIT, BEGIN, COMMIT, UPSERT};
use super::values::{Columns, Param};
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
    statements::start(conn)?;
    conn.bind_execute(BEGIN, &[])?;
    conn.bind_execute(
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
    conn.bind_execute(COMMIT, &[])?;
    conn.bind_execute(AFTER_COMMIT, &[])?;
    // A refusal inside the transaction is rolled back by `exchange`.
    let rows = conn.exchange().await?;
    let [row, after] = rows.as_slice() else {
        return Err(WireError::Protocol(format!(
            "a write answered {} rows, not 2",
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
    let mut after = Columns::new(after);
    let after = AfterCommit {
        wal: after.text()?,
        cache_epoch: after.nullable_int8()?,
    };
    Ok((upserted, after))
}
