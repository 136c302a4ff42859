//! The statements a wire connection prepares when it opens, each under its own name:
//! `BEGIN`, the upsert, `COMMIT`, and the statement read after the commit. Their text
//! comes from the store (`store::write_statements`), rendered once per process.

use std::sync::OnceLock;

use postgres_protocol::message::frontend;

use super::conn::WireConn;
use super::error::WireError;
use super::values::{INT4, JSONB, TEXT};
use crate::store::{write_statements, WriteStatements};

pub(super) const BEGIN: &str = "sg_begin";
pub(super) const UPSERT: &str = "sg_upsert";
pub(super) const COMMIT: &str = "sg_commit";
pub(super) const AFTER_COMMIT: &str = "sg_after_commit";

fn texts() -> Result<&'static WriteStatements, WireError> {
    static TEXTS: OnceLock<Result<WriteStatements, String>> = OnceLock::new();
    TEXTS
        .get_or_init(|| write_statements().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| WireError::Protocol(format!("the write statements do not render: {e}")))
}

/// Prepares every statement, in one round trip.
pub(super) async fn prepare(conn: &mut WireConn) -> Result<(), WireError> {
    let texts = texts()?;
    conn.start();
    frontend::parse(BEGIN, "BEGIN", [], &mut conn.out)?;
    frontend::parse(
        UPSERT,
        &texts.upsert,
        [TEXT, TEXT, TEXT, INT4, JSONB, INT4],
        &mut conn.out,
    )?;
    frontend::parse(COMMIT, "COMMIT", [], &mut conn.out)?;
    frontend::parse(AFTER_COMMIT, &texts.after_commit, [], &mut conn.out)?;
    frontend::sync(&mut conn.out);
    conn.flush().await?;
    let ended = conn.until_ready(None).await?;
    if let Some(error) = ended.error {
        return Err(error.into());
    }
    conn.done();
    Ok(())
}
