//! The warm-up: writes the key space once, so every read names a record that exists.
//!
//! Only the tables the selected scenarios read are written (`users` for point reads,
//! `orders` for `list`). With `--prefill auto` a table is skipped when its first and
//! last records are already there (an earlier run with at least as many keys wrote
//! them). Writes go through `/api/bulk-write`, 1000 records a request, a few requests in
//! flight. Then, because reads go to replicas, it waits until the replicas show the
//! last records written before letting the load start.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::gateway::Gateway;
use crate::http::Call;
use crate::keys::{order_id, shard_key, user_id, KeySpace, ORDERS_PER_KEY};
use crate::options::Prefill;
use crate::records;
use crate::scenarios::Needs;

/// Records per bulk request.
pub const BATCH: u64 = 1000;
/// Bulk requests in flight at once.
const IN_FLIGHT: usize = 4;
/// How long replicas may take to show the prefilled records.
const REPLICA_WAIT: Duration = Duration::from_secs(30);
/// Records probed on the replicas after writing (the last ones, spread over shards).
const REPLICA_PROBES: u64 = 24;

/// A table the prefill can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Users,
    Orders,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::Orders => "orders",
        }
    }

    /// Records per key.
    fn per_key(self) -> u64 {
        match self {
            Table::Users => 1,
            Table::Orders => ORDERS_PER_KEY,
        }
    }

    /// The id of the `i`-th record of the table (`i < keys * per_key`), and its key.
    fn record(self, i: u64) -> (u64, String) {
        match self {
            Table::Users => (i, user_id(i)),
            Table::Orders => (
                i / ORDERS_PER_KEY,
                order_id(i / ORDERS_PER_KEY, i % ORDERS_PER_KEY),
            ),
        }
    }

    /// The bulk body for records `range`.
    fn body(self, range: std::ops::Range<u64>) -> Value {
        let mut rng = rand::rng();
        let records: Vec<Value> = range
            .map(|i| {
                let (n, id) = self.record(i);
                let data = match self {
                    Table::Users => records::user(&mut rng, n),
                    Table::Orders => records::order(&mut rng, n, i % ORDERS_PER_KEY),
                };
                json!({"shard_key": shard_key(n), "id": id, "data": data})
            })
            .collect();
        json!({"table": self.name(), "records": records})
    }
}

/// Writes what `needs` asks for, as `mode` says.
pub async fn run(
    gateway: &mut Gateway,
    keys: &KeySpace,
    needs: Needs,
    mode: Prefill,
) -> anyhow::Result<()> {
    if !needs.any() {
        return Ok(());
    }
    let tables = [(needs.users, Table::Users), (needs.orders, Table::Orders)];
    for table in tables
        .into_iter()
        .filter(|(needed, _)| *needed)
        .map(|(_, t)| t)
    {
        let total = keys.size() * table.per_key();
        match mode {
            Prefill::Never => {
                println!(
                    "prefill: {}: skipped (--prefill never); reads of missing records fail",
                    table.name()
                );
                continue;
            }
            Prefill::Auto if complete(gateway, table, total).await? => {
                println!(
                    "prefill: {}: {} records already there (first and last found); skipped",
                    table.name(),
                    total
                );
                continue;
            }
            Prefill::Auto | Prefill::Always => {}
        }
        let started = Instant::now();
        write_all(gateway, table, total).await?;
        let written = started.elapsed();
        wait_for_replicas(gateway, table, total).await?;
        println!(
            "prefill: {}: wrote {total} records in {:.1} s; replicas caught up after {:.1} s",
            table.name(),
            written.as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Whether the first and last records are on the primary.
async fn complete(gateway: &mut Gateway, table: Table, total: u64) -> anyhow::Result<bool> {
    for i in [0, total - 1] {
        if !exists(gateway, table, i, "&consistency=strong").await? {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn exists(gateway: &mut Gateway, table: Table, i: u64, query: &str) -> anyhow::Result<bool> {
    let (n, id) = table.record(i);
    let path = format!("/api/read?table={}&id={id}{query}", table.name());
    let key = shard_key(n);
    let reply = gateway
        .call(Call::get("prefill probe", &path).shard_key(&key))
        .await?;
    match reply.status {
        200 => Ok(true),
        404 => Ok(false),
        // A replica that is down or lagging may answer 503; the caller retries.
        503 | 504 if query.is_empty() => Ok(false),
        _ => bail!("probing {path} answered {}", reply.detail()),
    }
}

/// Bulk-writes records `0..total`, `IN_FLIGHT` requests at a time.
async fn write_all(gateway: &Gateway, table: Table, total: u64) -> anyhow::Result<()> {
    let mut batches = (0..total)
        .step_by(BATCH as usize)
        .map(|start| start..(start + BATCH).min(total));
    let mut running = JoinSet::new();
    loop {
        while running.len() < IN_FLIGHT {
            let Some(range) = batches.next() else { break };
            let mut gateway = gateway.clone();
            running.spawn(async move {
                let body = table.body(range.clone());
                let reply = gateway
                    .call(Call::post("prefill", "/api/bulk-write", &body))
                    .await?;
                let failed = reply.json().and_then(|r| r["failed_count"].as_u64());
                if reply.status != 200 || failed != Some(0) {
                    bail!(
                        "bulk write of {} records {}..{} answered {}",
                        table.name(),
                        range.start,
                        range.end,
                        reply.detail()
                    );
                }
                Ok(())
            });
        }
        match running.join_next().await {
            Some(done) => done.map_err(|e| anyhow!("prefill task failed: {e}"))??,
            None => return Ok(()),
        }
    }
}

/// Waits until eventual reads find the last records written.
async fn wait_for_replicas(gateway: &mut Gateway, table: Table, total: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + REPLICA_WAIT;
    let first_probe = total.saturating_sub(REPLICA_PROBES);
    let mut pending: Vec<u64> = (first_probe..total).collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for i in pending {
            if !exists(gateway, table, i, "").await? {
                still.push(i);
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            eprintln!(
                "loadtest: warning: after {} s replicas still miss {} of the last {} {} \
                 records; early reads may 404",
                REPLICA_WAIT.as_secs(),
                pending.len(),
                total - first_probe,
                table.name()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_numbered_key_by_key() {
        assert_eq!(Table::Users.record(5), (5, "rec_5".to_owned()));
        assert_eq!(Table::Orders.record(0), (0, "ord_0_0".to_owned()));
        assert_eq!(
            Table::Orders.record(ORDERS_PER_KEY + 1),
            (1, "ord_1_1".to_owned())
        );
    }

    #[test]
    fn a_body_holds_its_range() {
        let body = Table::Orders.body(3..6);
        let ids: Vec<_> = body["records"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(ids, ["ord_1_0", "ord_1_1", "ord_1_2"]);
        assert_eq!(body["table"], "orders");
    }
}
