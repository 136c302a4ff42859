//! The benchmark's operations and the clients that run them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Instant;

use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::pg::PgConnection;
use diesel::sql_types::BigInt;
use diesel::upsert::excluded;
use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};

use super::records_table::{records, JsonText};
use super::{PAGE, TABLE};
use crate::connect::CommandError;
use crate::tools::progress::Tracker;

/// One generated record with its placement.
pub struct Row {
    pub key: String,
    pub id: String,
    pub slot: i32,
    pub shard: usize,
    pub data: JsonText,
}

/// What the operations draw on: the records, and every shard key with its shard.
pub struct Workload {
    pub rows: Vec<Row>,
    pub keys: Vec<(usize, String)>,
}

/// The workload's phases, run in this order on each target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Upsert,
    Read,
    List,
    Page,
}

impl Phase {
    pub const ALL: [Phase; 4] = [Phase::Upsert, Phase::Read, Phase::List, Phase::Page];

    pub fn label(self) -> &'static str {
        match self {
            Phase::Upsert => "upsert (1 row)",
            Phase::Read => "read by id",
            Phase::List => "list by key (50)",
            Phase::Page => "page (fan-out, 50)",
        }
    }
}

/// One benchmark client: one connection per shard it talks to (one for the single DB).
pub struct Client {
    pub conns: Vec<(String, PgConnection)>,
}

impl Client {
    /// The connection holding `shard`'s rows (the only one, on the single database).
    fn conn(&mut self, shard: usize) -> &mut (String, PgConnection) {
        let i = if self.conns.len() == 1 { 0 } else { shard };
        &mut self.conns[i]
    }
}

/// Runs `ops` operations of `phase`, spread over the clients (one thread each) through a
/// shared counter. Returns every operation's latency in microseconds.
pub fn run_phase(
    clients: &mut [Client],
    workload: &Workload,
    phase: Phase,
    ops: u64,
    tracker: &Tracker,
) -> Result<Vec<u32>, CommandError> {
    let next = AtomicU64::new(0);
    let outcomes: Vec<Result<Vec<u32>, CommandError>> = thread::scope(|s| {
        let handles: Vec<_> = clients
            .iter_mut()
            .map(|client| {
                let next = &next;
                s.spawn(move || {
                    let mut micros = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= ops {
                            return Ok(micros);
                        }
                        let t = Instant::now();
                        run_op(client, phase, i, workload)?;
                        micros.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                        tracker.inc(1);
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(CommandError::WorkerPanicked("bench client".into())))
            })
            .collect()
    });
    let mut all = Vec::with_capacity(ops as usize);
    for outcome in outcomes {
        all.extend(outcome?);
    }
    Ok(all)
}

fn run_op(
    client: &mut Client,
    phase: Phase,
    i: u64,
    workload: &Workload,
) -> Result<(), CommandError> {
    let (rows, keys) = (&workload.rows, &workload.keys);
    let what = phase.label();
    match phase {
        Phase::Upsert => {
            let row = &rows[i as usize];
            let (server, conn) = client.conn(row.shard);
            diesel::insert_into(records::table)
                .values((
                    records::table_name.eq(TABLE),
                    records::shard_key.eq(&row.key),
                    records::id.eq(&row.id),
                    records::slot.eq(row.slot),
                    records::data.eq(&row.data),
                ))
                .on_conflict((records::table_name, records::shard_key, records::id))
                .do_update()
                .set((
                    records::data.eq(excluded(records::data)),
                    records::slot.eq(excluded(records::slot)),
                    records::version.eq(sql::<BigInt>("nextval('record_version_seq')")),
                    records::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .map_err(CommandError::query(server, what))?;
        }
        Phase::Read => {
            // A fixed shuffle: reads do not follow the write order.
            let row =
                &rows[(xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes()) % rows.len() as u64) as usize];
            let (server, conn) = client.conn(row.shard);
            records::table
                .filter(records::table_name.eq(TABLE))
                .filter(records::shard_key.eq(&row.key))
                .filter(records::id.eq(&row.id))
                .select((records::version, records::data))
                .first::<(i64, JsonText)>(conn)
                .map_err(CommandError::query(server, what))?;
        }
        Phase::List => {
            let (shard, key) = &keys[i as usize % keys.len()];
            let (server, conn) = client.conn(*shard);
            list(conn, Some(key)).map_err(CommandError::query(server, what))?;
        }
        Phase::Page => {
            let mut merged = Vec::new();
            for (server, conn) in &mut client.conns {
                merged.extend(list(conn, None).map_err(CommandError::query(server, what))?);
            }
            merged.sort_unstable_by(|a, b| b.cmp(a));
            merged.truncate(PAGE as usize);
        }
    }
    Ok(())
}

/// The newest records of the table (one key's, or every key's), in the list order.
fn list(
    conn: &mut PgConnection,
    key: Option<&str>,
) -> diesel::QueryResult<Vec<(DateTime<Utc>, String, String)>> {
    let mut query = records::table
        .filter(records::table_name.eq(TABLE))
        .into_boxed();
    if let Some(k) = key {
        query = query.filter(records::shard_key.eq(k.to_owned()));
    }
    query
        .order((
            records::updated_at.desc(),
            records::shard_key.desc(),
            records::id.desc(),
        ))
        .limit(PAGE)
        .select((records::updated_at, records::shard_key, records::id))
        .load(conn)
}
