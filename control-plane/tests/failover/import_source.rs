//! The source of the import failover test: a database beside shard 1's (on its plain
//! primary, which never fails over; removed with that server), a table of orders, a
//! writer that keeps changing it until the cut-over freezes it, and the rows and
//! records to compare.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shard_manager::servers::connection_url;
use tokio_postgres::{Client, NoTls};

use crate::two_shards::TwoShards;

/// (key, id) -> the row as JSON text, in key order.
pub type Rows = BTreeMap<(String, String), String>;

/// `shop_orders` in `{scratch}_src` on shard 1's server.
pub struct SourceDb {
    pub url: String,
    pub client: Client,
}

/// Makes the database and its table: `rows` orders of 500 customers.
pub async fn create(shards: &TwoShards, rows: i64) -> SourceDb {
    let name = format!("{}_src", shards.db());
    let plain = &shards.plain;
    plain.query(
        plain.primary_port,
        "postgres",
        &format!("CREATE DATABASE {name}"),
    );
    let mut db = shards.settings.database.clone();
    db.dbname = name;
    let url = connection_url(&db, &plain.primary());
    let client = connect(&url).await;
    client
        .batch_execute(&format!(
            "CREATE TABLE shop_orders (
                 order_id BIGINT PRIMARY KEY,
                 customer TEXT NOT NULL,
                 total    NUMERIC(10,2) NOT NULL,
                 status   TEXT NOT NULL
             );
             INSERT INTO shop_orders
             SELECT n, 'cust-' || (n % 500), (n % 10000) / 100.0,
                    (ARRAY['new', 'paid', 'shipped'])[1 + n % 3]
               FROM generate_series(1, {rows}) AS n;"
        ))
        .await
        .expect("the source table");
    SourceDb { url, client }
}

pub async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

impl SourceDb {
    /// Every row as the import makes it a record: key, id and `to_jsonb` of the row.
    pub async fn rows(&self) -> Rows {
        let sql = "SELECT customer, order_id::text, to_jsonb(t)::text FROM shop_orders t";
        let found = self.client.query(sql, &[]).await.expect("the source rows");
        found
            .iter()
            .map(|r| ((r.get(0), r.get(1)), r.get(2)))
            .collect()
    }

    /// One number from the source (`SELECT count(*) ...`).
    pub async fn count(&self, sql: &str) -> i64 {
        self.client.query_one(sql, &[]).await.expect(sql).get(0)
    }
}

/// The records of `table` on the server at `addr`: (key, id) -> data as JSON text.
pub async fn records(shards: &TwoShards, addr: &str, table: &str) -> Rows {
    let client = connect(&connection_url(&shards.settings.database, addr)).await;
    let found = client
        .query(
            "SELECT shard_key, id, data::text FROM records WHERE table_name = $1",
            &[&table],
        )
        .await
        .expect("the records");
    found
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect()
}

/// What the writer did.
#[derive(Debug, Default)]
pub struct Changes {
    /// Inserts, updates, deletes and key changes done.
    pub done: [u64; 4],
    /// Writes refused by the frozen table (SQLSTATE SG003) after the cut-over.
    pub refused: u64,
    /// Any other failure.
    pub failed: Vec<String>,
}

impl Changes {
    pub fn total(&self) -> u64 {
        self.done.iter().sum()
    }
}

/// Inserts, updates, deletes and key changes of `shop_orders` (ids 1..=`rows` exist
/// at the start), one every few milliseconds, until stopped.
pub struct Writer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Changes>,
}

impl Writer {
    pub async fn start(source: &SourceDb, rows: i64) -> Self {
        let client = connect(&source.url).await;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut c = Changes::default();
            let mut next = rows;
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) {
                n += 1;
                // A fixed stride through the ids: the writer needs no random numbers.
                let id = 1 + (n * 7919) as i64 % rows;
                let op = (n % 4) as usize;
                let sql = match op {
                    0 => {
                        next += 1;
                        format!("INSERT INTO shop_orders VALUES ({next}, 'cust-new-{}', {} / 100.0, 'new')", next % 50, n % 9999)
                    }
                    1 => format!("UPDATE shop_orders SET total = {} / 100.0, status = 'paid' WHERE order_id = {id}", n % 9999),
                    2 => format!("DELETE FROM shop_orders WHERE order_id = {id}"),
                    _ => format!("UPDATE shop_orders SET customer = 'cust-moved-{}' WHERE order_id = {id}", n % 100),
                };
                match client.execute(&sql, &[]).await {
                    Ok(_) => c.done[op] += 1,
                    Err(e) if e.code().map(|s| s.code()) == Some("SG003") => c.refused += 1,
                    Err(e) => c.failed.push(format!("{sql}: {e}")),
                }
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            c
        });
        Self { stop, task }
    }

    pub async fn stop(self) -> Changes {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the writer")
    }
}
