//! One page of an export from one server: a table's records in keyset order, after
//! the last one exported, within a byte budget (as a list's page is, see
//! `store::page`), with what the server was told of the map in the same snapshot
//! (`store::statements::EXPORT_PAGE`).

use postgres_protocol::message::backend::DataRowBody;

use super::codec::columns::Columns;
use super::codec::values::Param;
use super::conn::WireConn;
use super::error::WireError;
use super::list::{fetch, Rows};
use super::read::record_from;
use super::statements::EXPORT;
use crate::store::{Budget, Record};

/// What a shard said it owned when a page was read: the map version it was told
/// (None: never told, it owns every slot) and how many slots it owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owned {
    pub told: Option<i64>,
    pub slots: i64,
}

/// One page of an export.
#[derive(Debug)]
pub struct ExportPage {
    pub owned: Owned,
    /// In `(shard_key, id)` order.
    pub records: Vec<Record>,
    /// Whether the shard may hold more after the last record: the page was full (its
    /// row limit or its byte budget).
    pub more: bool,
}

/// Where a page starts and how large it may be.
#[derive(Debug, Clone, Copy)]
pub struct PageAsk<'a> {
    pub table: &'a str,
    /// Only shard keys that start with this (`""`: every key).
    pub key_prefix: &'a str,
    /// The last (shard key, id) exported from this shard; None before the first page.
    pub after: Option<(&'a str, &'a str)>,
    pub rows: u32,
    pub max_bytes: usize,
}

/// Reads one page (see the module doc).
pub async fn export_page(conn: &mut WireConn, ask: PageAsk<'_>) -> Result<ExportPage, WireError> {
    let (key, id) = ask.after.unwrap_or(("", ""));
    let params = [
        Param::Text(ask.table),
        Param::Text(ask.key_prefix),
        Param::Text(key),
        Param::Text(id),
        Param::Int8(i64::from(ask.rows)),
    ];
    let page = fetch(conn, EXPORT, "export", &params, || {
        Collect::new(ask.max_bytes)
    })
    .await?;
    let named = |e: WireError| e.in_statement("export");
    let owned = page
        .owned
        .ok_or_else(|| WireError::Protocol("an export page came back without a row".into()))?;
    if let Some(e) = page.failed {
        return Err(named(e));
    }
    let more = page.budget.is_full() || page.records.len() >= ask.rows as usize;
    Ok(ExportPage {
        owned,
        records: page.records,
        more,
    })
}

struct Collect {
    budget: Budget,
    owned: Option<Owned>,
    records: Vec<Record>,
    failed: Option<WireError>,
}

impl Collect {
    fn new(max_bytes: usize) -> Self {
        Self {
            budget: Budget::new(max_bytes),
            owned: None,
            records: Vec::new(),
            failed: None,
        }
    }

    fn read(&mut self, row: &DataRowBody) -> Result<(), WireError> {
        let mut columns = Columns::new(row);
        let owned = Owned {
            told: columns.nullable_int8()?,
            slots: columns.int8()?,
        };
        self.owned.get_or_insert(owned);
        if columns.boolean()? && self.budget.admit(row.buffer().len()) {
            self.records.push(record_from(&mut columns)?);
        }
        Ok(())
    }
}

impl Rows for Collect {
    fn offer(&mut self, row: &DataRowBody) {
        if self.failed.is_none() {
            if let Err(e) = self.read(row) {
                self.failed = Some(e);
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
