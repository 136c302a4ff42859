//! The per-shard concurrency cap: a hot key whose writes hang on a row lock (held by a
//! direct PostgreSQL connection) holds at most its cap of the shard's connections, so
//! another key's reads on that shard stay fast. Without a cap the same load takes every
//! connection of the shard's primary and the other key's reads wait for the pool, then
//! fail: the control that shows the test measures what it claims.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use control_plane::keys::KeyLimits;
use serde_json::{json, Value};
use shard_manager::servers::connection_url;
use test_app::{assert_problem, spawn_app_with, TestApp};

use super::{await_known, create_key, limits};

/// Every request of this test goes to the shard of this key.
const SHARD_KEY: &str = "tenant-7";
/// Writers the hot key runs at once: more than the primary's connections.
const WRITERS: usize = 12;

/// A row of `users` locked FOR UPDATE by a transaction of a direct connection, until
/// dropped (the connection closes: the lock goes with it).
struct RowLock(tokio_postgres::Client);

impl RowLock {
    async fn hold(app: &TestApp, id: &str) -> Self {
        let shard = app.shard_of(SHARD_KEY).index();
        let url = connection_url(&app.settings.cluster.database, &app.primary(shard));
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("direct connection");
        tokio::spawn(conn);
        client.batch_execute("BEGIN").await.unwrap();
        let locked = client
            .execute(
                "SELECT 1 FROM records WHERE table_name = 'users' AND shard_key = $1 AND id = $2 FOR UPDATE",
                &[&SHARD_KEY, &id],
            )
            .await
            .unwrap();
        assert_eq!(locked, 1, "exactly the one row locked");
        Self(client)
    }

    /// Ends the transaction: the writes waiting on the row go on.
    async fn release(self) {
        self.0.batch_execute("ROLLBACK").await.unwrap();
    }
}

/// Writes of `key` to the locked record from [`WRITERS`] tasks until `stop`; after a
/// 429 a writer pauses 100 ms. Each task returns the 429 problems it got.
fn hot_writers(
    app: &TestApp,
    key: &str,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Value>>> {
    (0..WRITERS)
        .map(|i| {
            let (client, url, key, stop) = (
                app.client.clone(),
                app.url("/api/write"),
                key.to_owned(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut refused = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let res = client
                        .post(&url)
                        .bearer_auth(&key)
                        .header("x-shard-key", SHARD_KEY)
                        .json(&json!({"table": "users", "id": "locked", "data": {"writer": i}}))
                        .send()
                        .await
                        .unwrap();
                    if res.status() == 429 {
                        refused.push(assert_problem(res, 429).await);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                refused
            })
        })
        .collect()
}

/// `n` strong reads (the primary) of `key`'s record, one after the other: their
/// statuses and latencies.
async fn reads(app: &TestApp, key: &str, n: usize) -> (Vec<u16>, Vec<Duration>) {
    let mut statuses = Vec::new();
    let mut took = Vec::new();
    for _ in 0..n {
        let started = Instant::now();
        let res = app
            .client
            .get(app.url("/api/read?table=users&id=calm&consistency=strong"))
            .bearer_auth(key)
            .header("x-shard-key", SHARD_KEY)
            .send()
            .await
            .unwrap();
        took.push(started.elapsed());
        statuses.push(res.status().as_u16());
    }
    (statuses, took)
}

fn p99(mut took: Vec<Duration>) -> Duration {
    took.sort();
    took[(took.len() * 99).div_ceil(100) - 1]
}

#[tokio::test]
async fn a_hot_key_at_its_concurrency_cap_cannot_starve_another_keys_reads_on_that_shard() {
    // 8 connections per server (4 per HTTP worker), a cap of 2 for the capped key.
    // Single writes each on a connection of their own (no group commit): the control
    // needs every hot write held by the row lock to hold a connection at once. (Grouped,
    // a write held by a lock leaves its group only after the group's 100 ms lock bound,
    // so an uncapped hot key takes the connections one every 100 ms instead.)
    let app = spawn_app_with(|s| {
        s.cluster.database.pool_max_size = 8;
        s.cluster.database.batch_writes = false;
    })
    .await;
    let writer = create_key(&app, "loader", "write", KeyLimits::default()).await;
    let calm = create_key(&app, "calm", "read", KeyLimits::default()).await;
    let greedy = create_key(&app, "greedy", "write", KeyLimits::default()).await;
    let capped = create_key(&app, "capped", "write", limits("default", "default", "2")).await;
    for key in [&writer, &calm, &greedy, &capped] {
        await_known(&app, key).await;
    }
    for id in ["calm", "locked"] {
        let res = app
            .client
            .post(app.url("/api/write"))
            .bearer_auth(&writer)
            .header("x-shard-key", SHARD_KEY)
            .json(&json!({"table": "users", "id": id, "data": {}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }

    // Alone: the other key's reads of the shard.
    let (statuses, took) = reads(&app, &calm, 100).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let alone = p99(took);

    // Control: a hot key without a cap takes every connection of the primary.
    let lock = RowLock::hold(&app, "locked").await;
    let stop = Arc::new(AtomicBool::new(false));
    let writers = hot_writers(&app, &greedy, &stop);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (starved, starved_took) = reads(&app, &calm, 3).await;
    stop.store(true, Ordering::Relaxed);
    lock.release().await;
    for w in writers {
        assert!(w.await.unwrap().is_empty(), "greedy has no cap");
    }
    eprintln!("without a cap: {starved:?} in {starved_took:?}");
    assert!(
        starved.contains(&503) || starved_took.iter().any(|t| *t > Duration::from_millis(400)),
        "the uncapped hot key should have starved the reads: {starved:?} {starved_took:?}"
    );

    // With the cap: the same load from the capped key.
    let lock = RowLock::hold(&app, "locked").await;
    let stop = Arc::new(AtomicBool::new(false));
    let writers = hot_writers(&app, &capped, &stop);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (statuses, took) = reads(&app, &calm, 100).await;
    stop.store(true, Ordering::Relaxed);
    lock.release().await;
    let mut refused = Vec::new();
    for w in writers {
        refused.extend(w.await.unwrap());
    }
    let hot = p99(took);
    eprintln!(
        "calm's strong reads, p99: {} ms alone, {} ms beside the capped hot key ({} of its writes refused)",
        alone.as_millis(),
        hot.as_millis(),
        refused.len()
    );
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(
        hot < Duration::from_millis(300).max(alone * 5),
        "p99 {hot:?} beside the hot key, {alone:?} alone"
    );
    assert!(
        refused.len() >= WRITERS - 2,
        "the writers past the cap were refused"
    );
    let problem = &refused[0];
    assert_eq!(problem["type"], "urn:shardgate:problem:concurrency-limited");
    let shard = app.shard_of(SHARD_KEY);
    assert_eq!(problem["shard"], shard.0);
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("\"capped\"") && detail.contains(&format!("2 queries running on {shard}")),
        "{detail}"
    );
}
