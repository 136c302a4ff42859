//! A list: one page of a table's records, newest first, from one server; one statement
//! in one round trip, in the prepared shape the list takes (`store::list_statement`).

use super::conn::WireConn;
use super::error::WireError;
use super::read::record;
use super::statements::{self, LISTS};
use super::values::Param;
use crate::store::{ListQuery, ListShape, Record};

/// One shard key's records (with its slot, which the server must serve: SG001
/// otherwise) when `key` is given, else every key's on this server whose slot the shard
/// owns; filtered, after the cursor and limited as `q` says.
pub async fn list(
    conn: &mut WireConn,
    table: &str,
    key: Option<(&str, i32)>,
    q: &ListQuery,
) -> Result<Vec<Record>, WireError> {
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
    statements::start(conn)?;
    conn.bind_execute(LISTS[shape.index()], &params)?;
    let rows = conn.exchange().await?;
    rows.iter().map(record).collect()
}
