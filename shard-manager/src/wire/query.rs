//! A query's statements on one server (`store::query_statement`): built per request,
//! so sent unnamed (Parse, Bind, Execute, Sync in one send), its parameters binary and
//! typed as the statement declares them. The connection's own prepared statements are
//! prepared first, in an exchange of their own, on its first use: the unnamed Parse
//! then never mixes with theirs.

use postgres_protocol::message::frontend;

use super::codec::columns::Columns;
use super::codec::values::{Param, BOOL, INT4, INT8, JSONB, TEXT, TEXT_ARRAY};
use super::conn::WireConn;
use super::error::WireError;
use super::read::record_from;
use super::statements;
use crate::store::query::{QueryRow, SortValue};
use crate::store::query_statement::{Bind, QueryStatement};
use crate::store::Budget;

/// One server's page of a query: its rows in order, and whether rows were left out
/// for the byte budget after the last one.
#[derive(Debug, Default)]
pub struct QueryPage {
    pub rows: Vec<QueryRow>,
    pub cut: bool,
}

/// Runs a page statement (`query_statement::page`) whose rows carry `sort_fields`
/// fields' sort values; rows join the page while `max_bytes` admits them (the first
/// always does; the rest are read and dropped).
pub async fn query_page(
    conn: &mut WireConn,
    statement: &QueryStatement,
    sort_fields: usize,
    max_bytes: usize,
) -> Result<QueryPage, WireError> {
    let mut budget = Budget::new(max_bytes);
    let mut page = QueryPage::default();
    let mut failed = None;
    run(conn, statement, &mut |row| {
        if failed.is_some() || !budget.admit(row.buffer().len()) {
            return;
        }
        match decode(row, sort_fields) {
            Ok(r) => page.rows.push(r),
            Err(e) => failed = Some(e),
        }
    })
    .await?;
    if let Some(e) = failed {
        return Err(e.in_statement("query"));
    }
    page.cut = budget.is_full();
    Ok(page)
}

/// Runs a count statement (`query_statement::count`): the one int8 it returns.
pub async fn query_count(
    conn: &mut WireConn,
    statement: &QueryStatement,
) -> Result<u64, WireError> {
    let mut count = None;
    run(conn, statement, &mut |row| {
        count = Some(Columns::new(&row).int8());
    })
    .await?;
    let n = count.ok_or_else(|| WireError::Protocol("a count without its row".into()))??;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Runs an `EXPLAIN (FORMAT JSON)` (`query_statement::explain`, `::estimate`): the
/// plan, as the server wrote it.
pub async fn query_plan(
    conn: &mut WireConn,
    statement: &QueryStatement,
) -> Result<serde_json::Value, WireError> {
    let mut plan = None;
    run(conn, statement, &mut |row| {
        plan.get_or_insert(Columns::new(&row).text());
    })
    .await?;
    let plan = plan.ok_or_else(|| WireError::Protocol("an EXPLAIN without its row".into()))??;
    serde_json::from_str(&plan)
        .map_err(|e| WireError::Undecodable(format!("an EXPLAIN's plan: {e}")))
}

/// Runs an estimate (`query_statement::estimate`): its top plan's `Plan Rows`.
pub async fn query_estimate(
    conn: &mut WireConn,
    statement: &QueryStatement,
) -> Result<u64, WireError> {
    let value = query_plan(conn, statement).await?;
    value[0]["Plan"]["Plan Rows"]
        .as_f64()
        .map(|rows| rows.max(0.0).round() as u64)
        .ok_or_else(|| WireError::Undecodable("an EXPLAIN without `Plan Rows`".into()))
}

/// A row of a page: the record, then each sort field's rank, number and text.
fn decode(
    row: postgres_protocol::message::backend::DataRowBody,
    sort_fields: usize,
) -> Result<QueryRow, WireError> {
    let mut columns = Columns::new(&row);
    let record = record_from(&mut columns)?;
    let sort = (0..sort_fields)
        .map(|_| {
            Ok(SortValue {
                rank: columns.int4()?,
                number: columns.text()?,
                text: columns.text()?,
            })
        })
        .collect::<Result<_, WireError>>()?;
    Ok(QueryRow { record, sort })
}

/// One exchange of an unnamed statement, its rows handed to `on_row`.
async fn run(
    conn: &mut WireConn,
    statement: &QueryStatement,
    on_row: &mut (dyn FnMut(postgres_protocol::message::backend::DataRowBody) + Send),
) -> Result<(), WireError> {
    let named = |e: WireError| e.in_statement("query");
    if !conn.prepared {
        statements::start(conn)?;
        conn.exchange()
            .await
            .map_err(named)?
            .map_err(|refused| named(refused.error.into()))?;
    }
    conn.start();
    let types: Vec<u32> = statement.binds.iter().map(type_of).collect();
    frontend::parse("", &statement.sql, types, &mut conn.out)?;
    let texts: Vec<Vec<&str>> = statement
        .binds
        .iter()
        .map(|b| match b {
            Bind::Texts(items) => items.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        })
        .collect();
    let params: Vec<Param<'_>> = statement
        .binds
        .iter()
        .zip(&texts)
        .map(|(b, texts)| match b {
            Bind::Text(t) => Param::Text(t),
            Bind::Texts(_) => Param::Texts(texts),
            Bind::Jsonb(j) => Param::Jsonb(j),
            Bind::Int4(v) => Param::Int4(*v),
            Bind::Int8(v) => Param::Int8(*v),
            Bind::Bool(v) => Param::Bool(*v),
        })
        .collect();
    conn.bind_execute("", &params)?;
    conn.exchange_rows(&mut |_, row| on_row(row))
        .await
        .map_err(named)?
        .map_err(|refused| named(refused.error.into()))
}

fn type_of(b: &Bind) -> u32 {
    match b {
        Bind::Text(_) => TEXT,
        Bind::Texts(_) => TEXT_ARRAY,
        Bind::Jsonb(_) => JSONB,
        Bind::Int4(_) => INT4,
        Bind::Int8(_) => INT8,
        Bind::Bool(_) => BOOL,
    }
}
