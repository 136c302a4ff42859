//! A list: one page of a table's records, newest first, from one server; one statement
//! in the prepared shape the list takes (`store::statements::list`), its rows asked for
//! in batches that stop at the page's byte budget (`store::page`): one round trip for
//! up to `store::page::FIRST_ROWS` rows, one more for a page of more, small rows.

use super::codec::values::Param;
use super::conn::{Refused, WireConn};
use super::error::{ServerError, WireError};
use super::read::record;
use super::statements::{self, LISTS};
use crate::error::retry::{policy, Cause, Retry, Work};
use postgres_protocol::message::backend::{DataRowBody, Message};
use postgres_protocol::message::frontend;

use crate::store::{Budget, ListQuery, ListShape, Page, Record};

/// One shard key's records (with its slot, which the server must serve: SG001
/// otherwise) when `key` is given, else every key's on this server whose slot the shard
/// owns; filtered, after the cursor and limited as `q` says, and stopped at its byte
/// budget (`q.max_bytes`, see `store::page`).
pub async fn list(
    conn: &mut WireConn,
    table: &str,
    key: Option<(&str, i32)>,
    q: &ListQuery,
) -> Result<Page, WireError> {
    let filter = q.filter.as_ref().map(|f| f.get());
    let mut params = Vec::with_capacity(9);
    params.push(Param::Text(table));
    if let Some((key, slot)) = key {
        params.extend([Param::Int4(slot), Param::Text(key)]);
    }
    if let Some(filter) = filter {
        params.push(Param::Jsonb(filter));
    }
    if let Some(c) = &q.after {
        params.extend([
            Param::Timestamptz(c.updated_at),
            Param::Text(&c.shard_key),
            Param::Text(&c.id),
        ]);
    }
    params.push(Param::Int8(i64::from(q.limit)));
    let shape = ListShape {
        keyed: key.is_some(),
        filtered: filter.is_some(),
        after: q.after.is_some(),
    };
    let statement = LISTS[shape.index()];
    fetch(conn, statement, "list", &params, || {
        Collect::new(q.max_bytes)
    })
    .await?
    .into_page()
    .map_err(|e| e.in_statement("list"))
}

/// The rows one page of a list-like statement (a list, an export's page) collects as
/// they arrive, within the page's byte budget.
pub(super) trait Rows {
    /// Takes a row (or drops it past the budget).
    fn offer(&mut self, row: &DataRowBody);
    /// Whether more rows are wanted (the budget has room, nothing failed).
    fn wants_more(&self) -> bool;
    /// How many rows to ask for next (see `Budget::rows_to_ask`).
    fn rows_to_ask(&self) -> i32;
}

/// Runs the prepared `statement` once, its rows offered to `make()`'s collector.
/// Stale statements (a schema change) are prepared again and the statement asked once
/// more, as `statements::run` does for the other exchanges: a read is safe to resend.
/// `kind` names the statement in errors.
pub(super) async fn fetch<R: Rows + Send>(
    conn: &mut WireConn,
    statement: &str,
    kind: &'static str,
    params: &[Param<'_>],
    make: impl Fn() -> R,
) -> Result<R, WireError> {
    let named = |e: WireError| e.in_statement(kind);
    match page(conn, None, statement, params, make())
        .await
        .map_err(named)?
    {
        Ok(rows) => Ok(rows),
        Err(refused)
            if refused.error.invalidates_statements()
                && policy(Cause::StaleStatements, Work::Read) == Retry::PrepareAgainOnce =>
        {
            tracing::info!(sqlstate = %refused.error.code, statement = kind, "prepared statements are stale; preparing them again");
            page(conn, None, statement, params, make())
                .await
                .map_err(named)?
                .map_err(|refused| named(refused.error.into()))
        }
        Err(refused) => Err(named(refused.error.into())),
    }
}

/// One exchange of a list-like statement: the prepared `statement`, or the unnamed one
/// `unnamed` parses (its text and parameter types; the connection's own statements
/// must be prepared already, so the two never share an exchange). Rows come in batches
/// sized to what still fits (an Execute with a row count, the portal suspended between
/// them, one transaction): the server stops soon after the budget, and rows past it
/// are dropped as they arrive. A page never holds more than its budget plus its first
/// row, whatever `limit` rows would weigh.
pub(super) async fn page<R: Rows + Send>(
    conn: &mut WireConn,
    unnamed: Option<(&str, Vec<u32>)>,
    statement: &str,
    params: &[Param<'_>],
    mut page: R,
) -> Result<Result<R, Refused>, WireError> {
    statements::start(conn)?;
    if let Some((sql, types)) = unnamed {
        frontend::parse("", sql, types, &mut conn.out)?;
    }
    conn.bind_execute_rows(statement, params, page.rows_to_ask())?;
    conn.send_open().await?;
    let mut parsed = 0;
    let mut refused = None;
    loop {
        match conn.answer().await? {
            Message::ParseComplete => parsed += 1,
            Message::DataRow(row) => page.offer(&row),
            Message::PortalSuspended if page.wants_more() => {
                conn.execute_more(page.rows_to_ask()).await?;
            }
            Message::PortalSuspended | Message::CommandComplete(_) => break,
            Message::ErrorResponse(body) => {
                refused = Some(ServerError::parse(&body)?);
                break;
            }
            _ => {}
        }
    }
    if let Err(refused) = conn
        .finish(refused, parsed, &mut |_, row| page.offer(&row))
        .await?
    {
        return Ok(Err(refused));
    }
    Ok(Ok(page))
}

/// The rows of a page as they arrive: decoded while the budget admits them.
struct Collect {
    budget: Budget,
    records: Vec<Record>,
    /// The first row that did not decode.
    failed: Option<WireError>,
}

impl Rows for Collect {
    fn offer(&mut self, row: &DataRowBody) {
        if self.failed.is_none() && self.budget.admit(row.buffer().len()) {
            match record(row) {
                Ok(r) => self.records.push(r),
                Err(e) => self.failed = Some(e),
            }
        }
    }

    fn wants_more(&self) -> bool {
        self.failed.is_none() && !self.budget.is_full()
    }

    fn rows_to_ask(&self) -> i32 {
        self.budget.rows_to_ask()
    }
}

impl Collect {
    fn new(max_bytes: usize) -> Self {
        Self {
            budget: Budget::new(max_bytes),
            records: Vec::new(),
            failed: None,
        }
    }

    fn into_page(self) -> Result<Page, WireError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        Ok(Page {
            records: self.records,
            cut: self.budget.is_full(),
        })
    }
}
