//! Reading what the shards hold, with bounded memory: per shard key, its record count
//! and bytes, streamed from a server-side cursor in batches.
//!
//! "Bytes" is `pg_column_size(records.*)`: the size of the whole stored row as
//! PostgreSQL forms it (keys, slot, version, timestamps and the `jsonb` document, as
//! stored, compressed where it is), the amount a move would copy.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{QueryableByName, RunQueryDsl};

use crate::connect::{connect, CommandError};
use shard_manager::config::ClusterSettings;

/// Rows fetched from a cursor at a time.
const FETCH_ROWS: usize = 10_000;

/// One shard key on one shard.
#[derive(Debug, Clone, QueryableByName)]
pub struct KeyRow {
    #[diesel(sql_type = Text)]
    pub shard_key: String,
    #[diesel(sql_type = BigInt)]
    pub records: i64,
    #[diesel(sql_type = BigInt)]
    pub bytes: i64,
}

/// The order keys come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Whatever the server finds cheapest.
    Any,
    /// Byte order (`COLLATE "C"`), as the text range strategy compares keys.
    Text,
    /// Integer order, as the numeric range strategy compares keys.
    Numeric,
}

/// A cursor over one primary's keys.
pub struct KeyCursor {
    conn: PgConnection,
    server: String,
    done: bool,
}

impl KeyCursor {
    /// Opens a read-only transaction and a cursor over the keys of `table` (or all
    /// tables) on `server`.
    pub fn open(
        settings: &ClusterSettings,
        server: &str,
        table: Option<&str>,
        order: Order,
    ) -> Result<Self, CommandError> {
        let mut conn = connect(&settings.database, server, &settings.database.dbname)?;
        let order_by = match order {
            Order::Any => "",
            Order::Text => "ORDER BY shard_key COLLATE \"C\"",
            Order::Numeric => "ORDER BY shard_key::bigint",
        };
        conn.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(CommandError::query(
                server,
                "opening a read-only transaction",
            ))?;
        diesel::sql_query(format!(
            "DECLARE plan_keys NO SCROLL CURSOR FOR \
             SELECT shard_key, count(*)::bigint AS records, \
                    sum(pg_column_size(r.*))::bigint AS bytes \
             FROM records r WHERE ($1::text IS NULL OR r.table_name = $1) \
             GROUP BY shard_key {order_by}"
        ))
        .bind::<Nullable<Text>, _>(table)
        .execute(&mut conn)
        .map_err(CommandError::query(server, "opening a cursor over records"))?;
        Ok(Self {
            conn,
            server: server.to_owned(),
            done: false,
        })
    }

    /// The next batch of keys; empty once the cursor is exhausted (and closed).
    pub fn next_batch(&mut self) -> Result<Vec<KeyRow>, CommandError> {
        if self.done {
            return Ok(Vec::new());
        }
        let rows: Vec<KeyRow> = diesel::sql_query(format!("FETCH {FETCH_ROWS} FROM plan_keys"))
            .load(&mut self.conn)
            .map_err(CommandError::query(&self.server, "reading records"))?;
        if rows.len() < FETCH_ROWS {
            self.done = true;
            self.conn
                .batch_execute("COMMIT")
                .map_err(CommandError::query(&self.server, "closing the cursor"))?;
        }
        Ok(rows)
    }
}

/// Calls `visit(shard, row)` for every key on every primary, one primary after another.
pub fn each_key(
    settings: &ClusterSettings,
    table: Option<&str>,
    mut visit: impl FnMut(usize, &KeyRow),
) -> Result<(), CommandError> {
    for (shard, s) in settings.shards.iter().enumerate() {
        let mut cursor = KeyCursor::open(settings, &s.primary, table, Order::Any)?;
        loop {
            let batch = cursor.next_batch()?;
            if batch.is_empty() {
                break;
            }
            batch.iter().for_each(|row| visit(shard, row));
        }
    }
    Ok(())
}

/// Calls `visit(row)` for every key of the whole cluster in key order: each primary
/// streams its keys sorted, and the streams are merged.
pub fn each_key_in_order(
    settings: &ClusterSettings,
    table: Option<&str>,
    numeric: bool,
    mut visit: impl FnMut(&KeyRow),
) -> Result<(), CommandError> {
    let order = if numeric { Order::Numeric } else { Order::Text };
    let sort_key = |row: &KeyRow| -> (i64, String) {
        let n = if numeric {
            row.shard_key.parse().unwrap_or(i64::MAX)
        } else {
            0
        };
        (n, row.shard_key.clone())
    };
    let mut streams = Vec::with_capacity(settings.shards.len());
    for s in &settings.shards {
        streams.push((
            KeyCursor::open(settings, &s.primary, table, order)?,
            VecDeque::new(),
        ));
    }
    let mut heads = BinaryHeap::new();
    for (i, (cursor, buffer)) in streams.iter_mut().enumerate() {
        buffer.extend(cursor.next_batch()?);
        if let Some(row) = buffer.front() {
            heads.push(Reverse((sort_key(row), i)));
        }
    }
    while let Some(Reverse((_, i))) = heads.pop() {
        let (cursor, buffer) = &mut streams[i];
        if let Some(row) = buffer.pop_front() {
            visit(&row);
        }
        if buffer.is_empty() {
            buffer.extend(cursor.next_batch()?);
        }
        if let Some(row) = buffer.front() {
            heads.push(Reverse((sort_key(row), i)));
        }
    }
    Ok(())
}

/// Records per primary matching `table`, for sizing the ordered pass.
pub fn count_records(settings: &ClusterSettings, table: Option<&str>) -> Result<u64, CommandError> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut total = 0;
    for s in &settings.shards {
        let mut conn = connect(&settings.database, &s.primary, &settings.database.dbname)?;
        let c: Count = diesel::sql_query(
            "SELECT count(*)::bigint AS n FROM records WHERE ($1::text IS NULL OR table_name = $1)",
        )
        .bind::<Nullable<Text>, _>(table)
        .get_result(&mut conn)
        .map_err(CommandError::query(&s.primary, "counting records"))?;
        total += c.n as u64;
    }
    Ok(total)
}
