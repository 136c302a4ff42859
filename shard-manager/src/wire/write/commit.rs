//! The frame every write runs in: `BEGIN`, the write's statement, `COMMIT`, and the
//! statement that reads the WAL position and the cache epoch, all behind one Sync.
//!
//! tokio-postgres (which the gateway used before) sends a write
//! and that position statement each with its own Sync: PostgreSQL flushes after each,
//! so the gateway woke twice per write. Here the explicit transaction makes the commit
//! happen at `COMMIT`, before the last statement runs, so the position read is past the
//! write's commit record, as the read-your-writes token needs; and the server answers
//! everything in one flush.

use postgres_protocol::message::backend::DataRowBody;

use crate::store::CommitPosition;
use crate::wire::codec::columns::Columns;
use crate::wire::codec::values::Param;
use crate::wire::conn::WireConn;
use crate::wire::error::WireError;
use crate::wire::statements::{self, BEGIN, COMMIT, COMMIT_POSITION};

/// Runs the prepared `statement` with `params` in its own transaction and reads what
/// the primary says once it has committed (see [`CommitPosition`]). Returns the
/// statement's rows.
///
/// When PostgreSQL refuses (the slot is not this shard's, a statement timeout), nothing
/// was written: the transaction is rolled back and the refusal returned, with the
/// connection reusable. A lost connection leaves it unusable (the pool drops it).
pub(in crate::wire) async fn committed(
    conn: &mut WireConn,
    statement: &'static str,
    params: &[Param<'_>],
) -> Result<(Vec<DataRowBody>, CommitPosition), WireError> {
    // A refusal inside the transaction is rolled back by `exchange`; stale statements
    // are prepared again and the frame sent once more only if nothing committed.
    let mut rows = statements::run(conn, statement, |conn| {
        conn.bind_execute(BEGIN, &[])?;
        conn.bind_execute(statement, params)?;
        conn.bind_execute(COMMIT, &[])?;
        conn.bind_execute(COMMIT_POSITION, &[])
    })
    .await?;
    // The position statement answers exactly one row, and it comes last.
    let position = rows.pop().ok_or_else(|| {
        WireError::Protocol("a write came back without the position after its commit".into())
    })?;
    Ok((rows, commit_position(&position)?))
}

/// The position statement's row: what the primary says once a write committed.
pub(super) fn commit_position(row: &DataRowBody) -> Result<CommitPosition, WireError> {
    let mut row = Columns::new(row);
    Ok(CommitPosition {
        wal: row.text()?,
        cache_epoch: row.nullable_int8()?,
    })
}
