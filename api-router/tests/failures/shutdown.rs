//! SIGTERM drains the real binary: the `api-router` executable runs as a child
//! process with two HTTP workers, and writes blocked on row locks (held from outside)
//! are in flight when it gets SIGTERM.
//!
//! - `sigterm_lets_the_request_in_flight_finish`: new requests fail within a second of
//!   SIGTERM; once the lock is released the blocked write still answers 200, and the
//!   process exits with status 0 within its 10 s shutdown timeout.
//! - `sigterm_keeps_connections_an_idle_worker_opened`: the same, when the writes in
//!   flight on one worker use pooled connections that the *other* worker opened, and
//!   that other worker has nothing in flight (so it stops first). Every one of those
//!   writes must still answer 200: a pooled connection must not depend on the HTTP
//!   worker that happened to open it.

use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::Connection;
use reqwest::StatusCode;
use serde_json::Value;
use shard_manager::servers::connection_url;
use test_app::gateway_process::Process;
use test_app::{prepare_database, test_settings};
use test_support::outage::{serial, DropDatabase};
use tokio::task::JoinHandle;

use crate::support::{keys_on, until, until_waiting_on_locks, Gateway, RowLock};

const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// A client with its own keep-alive connection, opened now (so it lands on the next
/// worker in the gateway's round-robin).
async fn connected(port: u16) -> Gateway {
    let gateway = Gateway::at(port);
    let res = gateway.get("k", "/api/shards").await;
    assert_eq!(res.status(), StatusCode::OK);
    gateway
}

/// Writes `key` in a task; the client (and its connection) is dropped when it ends.
fn write_in_background(gateway: Gateway, key: &str) -> JoinHandle<(StatusCode, Value)> {
    let key = key.to_owned();
    tokio::spawn(async move {
        let res = gateway.write(&key, &key).await;
        (res.status(), res.json::<Value>().await.unwrap())
    })
}

/// Locks the record `key` (id = key) on a direct connection to `url`.
async fn lock(url: &str, key: &str) -> RowLock {
    RowLock::hold(PgConnection::establish(url).unwrap(), key, key).await
}

async fn assert_replaced(write: JoinHandle<(StatusCode, Value)>, process: &Process) {
    let (status, body) = write.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}\n{}", process.output());
    assert_eq!(body["created"], false);
}

async fn assert_clean_exit(mut process: Process) {
    let (exit, after) = process.exit_within(SHUTDOWN_TIMEOUT).await;
    assert!(exit.success(), "exit {exit}:\n{}", process.output());
    assert!(
        process.output().contains("gateway stopped"),
        "{}",
        process.output()
    );
    eprintln!("api-router exited {after:?} after SIGTERM");
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish() {
    let _serial = serial().await;
    let mut settings = test_settings();
    prepare_database(&mut settings).await;
    let _db = DropDatabase(settings.cluster.database.dbname.clone());
    let db = &settings.cluster.database.dbname;
    let mut process = Process::start(db, &[]).await;
    let key = keys_on(&settings, 0, 1).remove(0);
    let res = Gateway::at(process.port).write(&key, &key).await;
    assert_eq!(res.status(), StatusCode::CREATED, "{}", process.output());
    let url = connection_url(
        &settings.cluster.database,
        &settings.cluster.shards[0].primary,
    );

    let held = lock(&url, &key).await;
    let in_flight = write_in_background(Gateway::at(process.port), &key);
    until_waiting_on_locks(&url, db, 1).await;

    process.terminate();
    let address = format!("http://127.0.0.1:{}/api/health", process.port);
    let (refused, took) = until(Duration::from_secs(1), "new requests refused", || async {
        let fresh = reqwest::Client::builder()
            .timeout(Duration::from_millis(250))
            .build()
            .unwrap();
        fresh.get(&address).send().await.err()
    })
    .await;
    eprintln!("a new request failed {took:?} after SIGTERM: {refused}");
    assert!(
        !in_flight.is_finished(),
        "the write ended before the lock was released"
    );

    held.release();
    assert_replaced(in_flight, &process).await;
    assert_clean_exit(process).await;
}

#[tokio::test]
async fn sigterm_keeps_connections_an_idle_worker_opened() {
    let _serial = serial().await;
    let mut settings = test_settings();
    prepare_database(&mut settings).await;
    let _db = DropDatabase(settings.cluster.database.dbname.clone());
    let db = &settings.cluster.database.dbname;
    // Health checks only at start: no check connection joins the pool mid-test.
    let env = [("SHARDGATE__REPLICATION__CHECK_INTERVAL_MS", "60000")];
    let mut process = Process::start(db, &env).await;
    let keys = keys_on(&settings, 0, 2);
    for key in &keys {
        let res = Gateway::at(process.port).write(key, key).await;
        assert_eq!(res.status(), StatusCode::CREATED, "{}", process.output());
    }
    let url = connection_url(
        &settings.cluster.database,
        &settings.cluster.shards[0].primary,
    );

    // Connections alternate between the two workers: `first` all land on one, `second`
    // all on the other.
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        first.push(connected(process.port).await);
        second.push(connected(process.port).await);
    }
    first.truncate(3);

    // Three writes blocked at once on the first worker make it open pool connections
    // (at most two idle ones exist before: the start-up check's and the set-up
    // writes'). Then they finish and the first worker has nothing in flight.
    let held = lock(&url, &keys[0]).await;
    let opening: Vec<_> = first
        .into_iter()
        .map(|g| write_in_background(g, &keys[0]))
        .collect();
    until_waiting_on_locks(&url, db, 3).await;
    held.release();
    for write in opening {
        assert_replaced(write, &process).await;
    }

    // Five writes blocked on the second worker take every idle pooled connection,
    // including those the first worker opened.
    let held = lock(&url, &keys[1]).await;
    let in_flight: Vec<_> = second
        .into_iter()
        .map(|g| write_in_background(g, &keys[1]))
        .collect();
    until_waiting_on_locks(&url, db, 5).await;

    process.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    held.release();
    for write in in_flight {
        assert_replaced(write, &process).await;
    }
    assert_clean_exit(process).await;
}
