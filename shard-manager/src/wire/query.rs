//! A query's statements on one server (`store::query_statement`): built per request,
//! so sent unnamed (Parse, Bind, Execute, Sync in one send), its parameters binary and
//! typed as the statement declares them. The connection's own prepared statements are
//! prepared first, in an exchange of their own, on its first use: the unnamed Parse
//! then never mixes with theirs.

use postgres_protocol::message::backend::DataRowBody;
use postgres_protocol::message::frontend;

use super::codec::columns::Columns;
use super::codec::values::{Param, BOOL, INT4, INT8, JSONB, TEXT, TEXT_ARRAY};
use super::conn::WireConn;
use super::error::WireError;
use super::list::{page, Rows};
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
/// always does). As a list's page (`super::list`), the rows are asked in batches sized
/// to what still fits, so the server stops soon after the budget: it never reads,
/// sorts past the index or sends a whole `limit` of large rows to be dropped here.
pub async fn query_page(
    conn: &mut WireConn,
    statement: &QueryStatement,
    sort_fields: usize,
    max_bytes: usize,
) -> Result<QueryPage, WireError> {
    let named = |e: WireError| e.in_statement("query");
    prepare_connection(conn).await?;
    let texts = texts(statement);
    let params = params(statement, &texts);
    let unnamed = Some((statement.sql.as_str(), types(statement)));
    let collect = Collect {
        budget: Budget::new(max_bytes),
        page: QueryPage::default(),
        sort_fields,
        failed: None,
    };
    let collect = page(conn, unnamed, "", &params, collect)
        .await
        .map_err(named)?
        .map_err(|refused| named(refused.error.into()))?;
    if let Some(e) = collect.failed {
        return Err(named(e));
    }
    let mut page = collect.page;
    page.cut = collect.budget.is_full();
    Ok(page)
}

/// A query's page as its rows arrive: decoded while the budget admits them.
struct Collect {
    budget: Budget,
    page: QueryPage,
    sort_fields: usize,
    /// The first row that did not decode.
    failed: Option<WireError>,
}

impl Rows for Collect {
    fn offer(&mut self, row: &DataRowBody) {
        if self.failed.is_some() || !self.budget.admit(row.buffer().len()) {
            return;
        }
        match decode(row.clone(), self.sort_fields) {
            Ok(r) => self.page.rows.push(r),
            Err(e) => self.failed = Some(e),
        }
    }

    fn wants_more(&self) -> bool {
        self.failed.is_none() && !self.budget.is_full()
    }

    fn rows_to_ask(&self) -> i32 {
        self.budget.rows_to_ask()
    }
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
/// statement's plan, the one object of the array the server wrote (`{"Plan": ...}`).
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
    // `EXPLAIN (FORMAT JSON)` answers an array of one object per statement: one here.
    let serde_json::Value::Array(mut plans) = serde_json::from_str(&plan)
        .map_err(|e| WireError::Undecodable(format!("an EXPLAIN's plan: {e}")))?
    else {
        return Err(WireError::Undecodable(
            "an EXPLAIN's plan is not an array".into(),
        ));
    };
    match plans.len() {
        1 => Ok(plans.swap_remove(0)),
        n => Err(WireError::Undecodable(format!(
            "an EXPLAIN of one statement answered {n} plans"
        ))),
    }
}

/// Runs an estimate (`query_statement::estimate`): its top plan's `Plan Rows`.
pub async fn query_estimate(
    conn: &mut WireConn,
    statement: &QueryStatement,
) -> Result<u64, WireError> {
    let value = query_plan(conn, statement).await?;
    value["Plan"]["Plan Rows"]
        .as_f64()
        .map(|rows| rows.max(0.0).round() as u64)
        .ok_or_else(|| WireError::Undecodable("an EXPLAIN without `Plan Rows`".into()))
}

/// A row of a page: the record, then each sort field's rank, number and text.
fn decode(row: DataRowBody, sort_fields: usize) -> Result<QueryRow, WireError> {
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

/// The connection's own statements, prepared in an exchange of their own on its first
/// use, so that an unnamed statement's Parse never shares theirs.
async fn prepare_connection(conn: &mut WireConn) -> Result<(), WireError> {
    let named = |e: WireError| e.in_statement("query");
    if !conn.prepared {
        statements::start(conn)?;
        conn.exchange()
            .await
            .map_err(named)?
            .map_err(|refused| named(refused.error.into()))?;
    }
    Ok(())
}

/// The parameters' types, as the statement declares them.
fn types(statement: &QueryStatement) -> Vec<u32> {
    statement.binds.iter().map(type_of).collect()
}

/// Each parameter's text items (a path's segments; empty for the others), which
/// [`params`] borrows.
fn texts(statement: &QueryStatement) -> Vec<Vec<&str>> {
    statement
        .binds
        .iter()
        .map(|b| match b {
            Bind::Texts(items) => items.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// The statement's parameters, to bind.
fn params<'a>(statement: &'a QueryStatement, texts: &'a [Vec<&'a str>]) -> Vec<Param<'a>> {
    statement
        .binds
        .iter()
        .zip(texts)
        .map(|(b, texts)| match b {
            Bind::Text(t) => Param::Text(t),
            Bind::Texts(_) => Param::Texts(texts),
            Bind::Jsonb(j) => Param::Jsonb(j),
            Bind::Int4(v) => Param::Int4(*v),
            Bind::Int8(v) => Param::Int8(*v),
            Bind::Bool(v) => Param::Bool(*v),
        })
        .collect()
}

/// One exchange of an unnamed statement, all its rows handed to `on_row`.
async fn run(
    conn: &mut WireConn,
    statement: &QueryStatement,
    on_row: &mut (dyn FnMut(DataRowBody) + Send),
) -> Result<(), WireError> {
    let named = |e: WireError| e.in_statement("query");
    prepare_connection(conn).await?;
    conn.start();
    frontend::parse("", &statement.sql, types(statement), &mut conn.out)?;
    let texts = texts(statement);
    conn.bind_execute("", &params(statement, &texts))?;
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
