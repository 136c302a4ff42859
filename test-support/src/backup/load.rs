//! The load the backup tests and benchmark run while a point is named: writers that note the WAL
//! position around each commit, and transferers that move money between an account on
//! each of two shards with a real two-phase commit (both parts prepared, the decision
//! through the coordinator log a gateway uses, `MetaLog`, both committed).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use control_plane::txn::MetaLog;
use shard_manager::cluster::txn::gid;
use shard_manager::cluster::txn::log::{Decision, DecisionLog};
use shard_manager::routing::ShardId;
use tokio_postgres::{Client, NoTls};

/// Accounts per shard the transferers use (1..=ACCOUNTS); two more are the held ones'.
pub const ACCOUNTS: i64 = 20;
pub const OPENING: i64 = 1_000;

/// The tables the load writes, on each shard's `shardgate` database: `acks` (the
/// writers'), the accounts with their opening balance (the held transfers' two
/// included) and `transfers`.
pub fn tables() -> String {
    format!(
        "CREATE TABLE acks (id bigint PRIMARY KEY); \
         CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint NOT NULL); \
         INSERT INTO accounts SELECT g, {OPENING} FROM generate_series(1, {}) g; \
         CREATE TABLE transfers (txid text PRIMARY KEY, amount bigint NOT NULL)",
        ACCOUNTS + 2
    )
}

/// Microseconds since the epoch (the restore point's `created_at` is compared with it).
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

pub async fn connect(port: u16) -> Client {
    let url = format!("host=127.0.0.1 port={port} user=postgres dbname=shardgate");
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

/// A write on one shard with the WAL positions read just before and after its commit.
pub struct Write {
    pub shard: usize,
    pub id: i64,
    pub sent_us: i64,
    pub lsn_before: u64,
    pub lsn_after: u64,
}

pub async fn lsn(c: &Client) -> u64 {
    let row = c
        .query_one("SELECT (pg_current_wal_insert_lsn() - '0/0')::int8", &[])
        .await
        .expect("wal position");
    row.get::<_, i64>(0) as u64
}

pub async fn writer(port: u16, shard: usize, first: i64, stop: Arc<AtomicBool>) -> Vec<Write> {
    let c = connect(port).await;
    let mut out = Vec::new();
    let mut id = first;
    while !stop.load(Ordering::Relaxed) {
        let sent_us = now_us();
        let lsn_before = lsn(&c).await;
        c.execute("INSERT INTO acks VALUES ($1)", &[&id])
            .await
            .expect("a write");
        let lsn_after = lsn(&c).await;
        out.push(Write {
            shard,
            id,
            sent_us,
            lsn_before,
            lsn_after,
        });
        id += 1;
        // A steady load, not a saturating one: the backup shares the machine.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    out
}

/// A transfer: when it was begun, and when both parts were committed (acknowledged).
pub struct Transfer {
    pub txid: String,
    pub begun_us: i64,
    pub acked_us: i64,
    /// How long the decision write took (what the fence delays).
    pub settle: Duration,
}

/// Both parts prepared; the decision logged; `commit` says whether to commit them now.
pub async fn prepare_both(shards: &[Client; 2], txid: &str, from: i64, to: i64, amount: i64) {
    for (i, c) in shards.iter().enumerate() {
        let (account, delta) = if i == 0 {
            (from, -amount)
        } else {
            (to, amount)
        };
        let name = gid::gid(txid, ShardId(i as u32));
        c.batch_execute(&format!(
            "BEGIN; UPDATE accounts SET balance = balance + ({delta}) WHERE id = {account}; \
             INSERT INTO transfers VALUES ('{txid}', {delta}); PREPARE TRANSACTION '{name}'"
        ))
        .await
        .expect("prepare a part");
    }
}

pub async fn commit_both(shards: &[Client; 2], txid: &str) {
    for (i, c) in shards.iter().enumerate() {
        let name = gid::gid(txid, ShardId(i as u32));
        c.batch_execute(&format!("COMMIT PREPARED '{name}'"))
            .await
            .expect("commit a part");
    }
}

pub const BOTH: [ShardId; 2] = [ShardId(0), ShardId(1)];

pub async fn transferer(
    ports: [u16; 2],
    log: Arc<MetaLog>,
    stop: Arc<AtomicBool>,
) -> Vec<Transfer> {
    let shards = [connect(ports[0]).await, connect(ports[1]).await];
    let mut out = Vec::new();
    let mut n = 0i64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let txid = gid::new_txid();
        let begun_us = now_us();
        let (from, to) = (1 + n % ACCOUNTS, 1 + (n * 7) % ACCOUNTS);
        prepare_both(&shards, &txid, from, to, 1 + n % 9).await;
        // A slow coordinator between the steps: parts are often prepared, undecided
        // or decided, at the moment a point is named.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let asked = Instant::now();
        let decided = log.settle(&txid, Decision::Commit, &BOTH).await;
        let settle = asked.elapsed();
        assert_eq!(decided.expect("the decision"), Decision::Commit);
        tokio::time::sleep(Duration::from_millis(10)).await;
        commit_both(&shards, &txid).await;
        out.push(Transfer {
            txid,
            begun_us,
            acked_us: now_us(),
            settle,
        });
    }
    out
}
