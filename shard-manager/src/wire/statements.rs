//! The statements a wire connection prepares when it opens, each under its own name:
//! for a write `BEGIN`, the upsert (one record or many), the delete, `COMMIT` and the
//! statement read after the commit; for a read the point read and the replay position. Their text comes from the store
//! (`store::wire_statements`), rendered once per process; they are prepared with a
//! connection's first exchange (see [`start`]). (An `INSERT` is prepared on a
//! replica too: preparing is allowed there, only running it is refused.)

use std::sync::OnceLock;

use postgres_protocol::message::frontend;

use super::conn::WireConn;
use super::error::WireError;
use super::values::{INT4, INT4_ARRAY, JSONB, JSONB_ARRAY, TEXT, TEXT_ARRAY};
use crate::store::{wire_statements, WireStatements};

pub(super) const BEGIN: &str = "sg_begin";
pub(super) const UPSERT: &str = "sg_upsert";
pub(super) const COMMIT: &str = "sg_commit";
pub(super) const AFTER_COMMIT: &str = "sg_after_commit";
pub(super) const FIND: &str = "sg_find";
pub(super) const REPLAY_WAL: &str = "sg_replay_wal";
pub(super) const UPSERT_MANY: &str = "sg_upsert_many";
pub(super) const DELETE: &str = "sg_delete";

fn texts() -> Result<&'static WireStatements, WireError> {
    static TEXTS: OnceLock<Result<WireStatements, String>> = OnceLock::new();
    TEXTS
        .get_or_init(|| wire_statements().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| WireError::Protocol(format!("the write statements do not render: {e}")))
}

/// Starts an exchange that runs prepared statements. On a connection's first exchange
/// every statement is prepared in the same send (Parse messages ahead of the
/// statements that use them: no extra round trip), so a failure to prepare (a shard
/// without its schema) is the first request's error, classified like any other, and
/// the connection is not reused (see `WireConn::exchange`).
pub(super) fn start(conn: &mut WireConn) -> Result<(), WireError> {
    conn.start();
    if conn.prepared {
        return Ok(());
    }
    let texts = texts()?;
    frontend::parse(BEGIN, "BEGIN", [], &mut conn.out)?;
    frontend::parse(
        UPSERT,
        &texts.upsert,
        [TEXT, TEXT, TEXT, INT4, JSONB, INT4],
        &mut conn.out,
    )?;
    frontend::parse(COMMIT, "COMMIT", [], &mut conn.out)?;
    frontend::parse(AFTER_COMMIT, &texts.after_commit, [], &mut conn.out)?;
    frontend::parse(FIND, &texts.find, [INT4, TEXT, TEXT, TEXT], &mut conn.out)?;
    frontend::parse(REPLAY_WAL, &texts.replay_wal, [], &mut conn.out)?;
    frontend::parse(
        UPSERT_MANY,
        &texts.upsert_many,
        [
            TEXT_ARRAY,
            TEXT_ARRAY,
            TEXT_ARRAY,
            INT4_ARRAY,
            JSONB_ARRAY,
            INT4_ARRAY,
        ],
        &mut conn.out,
    )?;
    frontend::parse(
        DELETE,
        &texts.delete,
        [INT4, TEXT, TEXT, TEXT],
        &mut conn.out,
    )?;
    Ok(())
}
