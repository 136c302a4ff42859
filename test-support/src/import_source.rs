//! An import's source: a separate database on the metadata server with a table of
//! orders, a writer that keeps changing it (inserts, updates, deletes, key changes)
//! until the cut-over refuses it, and every source row as JSON for the comparison with
//! its record. For control-plane's import tests and api-router's import benchmark.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use control_plane::import::runner::Request;
use rand::Rng;
use shard_manager::servers::connection_url;
use shard_manager::ClusterSettings;
use tokio_postgres::{Client, NoTls};

use crate::maintenance::on_own_runtime;

/// A database beside the test's own, dropped at the end.
pub struct SourceDb {
    pub url: String,
    maintenance: String,
    name: String,
}

impl SourceDb {
    /// `{the test's database}_src` on the metadata server.
    pub async fn create(settings: &ClusterSettings) -> Self {
        let name = format!("{}_src", settings.database.dbname);
        let mut db = settings.database.clone();
        db.dbname = "postgres".into();
        let maintenance = connection_url(&db, &settings.metadata.address);
        db.dbname = name.clone();
        let url = connection_url(&db, &settings.metadata.address);
        let admin = connect(&maintenance).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        Self {
            url,
            maintenance,
            name,
        }
    }

    pub async fn client(&self) -> Client {
        connect(&self.url).await
    }
}

impl Drop for SourceDb {
    fn drop(&mut self) {
        let (maintenance, name) = (self.maintenance.clone(), self.name.clone());
        on_own_runtime(async move {
            if let Ok((c, conn)) = tokio_postgres::connect(&maintenance, NoTls).await {
                tokio::spawn(conn);
                let _ = c
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            }
        });
    }
}

/// A plain connection to `url` (the source is read as any PostgreSQL client reads it).
pub async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// `shop_orders`: `rows` orders of 2,000 customers.
pub async fn orders_table(source: &Client, rows: i64) {
    source
        .batch_execute(&format!(
            "CREATE TABLE shop_orders (
                 order_id  BIGINT PRIMARY KEY,
                 customer  TEXT NOT NULL,
                 total     NUMERIC(10,2) NOT NULL,
                 status    TEXT NOT NULL,
                 tags      TEXT[] NOT NULL DEFAULT '{{}}',
                 placed_at TIMESTAMPTZ NOT NULL DEFAULT '2026-01-01T00:00:00Z'
             );
             INSERT INTO shop_orders (order_id, customer, total, status, tags, placed_at)
             SELECT n, 'cust-' || (n % 2000), (n % 10000) / 100.0,
                    (ARRAY['new', 'paid', 'shipped'])[1 + n % 3],
                    ARRAY['t' || (n % 7)],
                    '2026-01-01T00:00:00Z'::timestamptz + n * interval '1 minute'
               FROM generate_series(1, {rows}) AS n;"
        ))
        .await
        .unwrap();
}

/// What the writer did.
#[derive(Debug, Default)]
pub struct Changes {
    pub inserts: u64,
    pub updates: u64,
    pub deletes: u64,
    pub rekeys: u64,
    /// Writes refused by the frozen table after the cut-over, with the first message.
    pub refused: u64,
    pub refusal: String,
    /// Any other failure.
    pub failed: Vec<String>,
}

/// A writer changing `shop_orders` (ids 1..=`rows` exist at the start) until stopped.
pub struct Writer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Changes>,
}

impl Writer {
    pub async fn start(source: &SourceDb, rows: i64) -> Self {
        let client = source.client().await;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut c = Changes::default();
            let mut next = rows + 1;
            while !flag.load(Ordering::Relaxed) {
                let (op, id, money): (u32, i64, i64) = {
                    let mut rng = rand::rng();
                    (
                        rng.random_range(0..4),
                        rng.random_range(1..=rows),
                        rng.random_range(0..99_999),
                    )
                };
                let sql = match op {
                    0 => {
                        next += 1;
                        format!("INSERT INTO shop_orders (order_id, customer, total, status) VALUES ({next}, 'cust-new-{}', {money} / 100.0, 'new') ON CONFLICT (order_id) DO NOTHING", next % 50)
                    }
                    1 => format!("UPDATE shop_orders SET total = {money} / 100.0, status = 'paid' WHERE order_id = {id}"),
                    2 => format!("DELETE FROM shop_orders WHERE order_id = {id}"),
                    _ => format!("UPDATE shop_orders SET customer = 'cust-moved-{}' WHERE order_id = {id}", money % 100),
                };
                match client.execute(&sql, &[]).await {
                    Ok(_) => match op {
                        0 => c.inserts += 1,
                        1 => c.updates += 1,
                        2 => c.deletes += 1,
                        _ => c.rekeys += 1,
                    },
                    Err(e) if e.code().map(|s| s.code()) == Some("SG003") => {
                        c.refused += 1;
                        if c.refusal.is_empty() {
                            c.refusal = e
                                .as_db_error()
                                .map(|d| d.message().to_owned())
                                .unwrap_or_default();
                        }
                    }
                    Err(e) => c.failed.push(format!("{sql}: {e}")),
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            c
        });
        Self { stop, task }
    }

    pub async fn stop(self) -> Changes {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// The request the tests make: `shop_orders` keyed by customer, id order_id, into `orders`.
pub fn request(source: &str, cutover: bool) -> Request {
    Request {
        source: source.to_owned(),
        table: "shop_orders".into(),
        key_column: "customer".into(),
        id_column: "order_id".into(),
        into: "orders".into(),
        batch: 5_000,
        cutover,
    }
}

/// Every source row: (key, id) -> the row as JSON.
pub async fn source_rows(source: &Client) -> HashMap<(String, String), serde_json::Value> {
    source
        .query(
            "SELECT customer, order_id::text, to_jsonb(t)::text FROM shop_orders t",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let json: String = r.get(2);
            ((r.get(0), r.get(1)), serde_json::from_str(&json).unwrap())
        })
        .collect()
}
