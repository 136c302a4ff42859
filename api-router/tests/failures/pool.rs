//! Failures inside PostgreSQL give their pooled connection back.
//!
//! `statement_timeouts_answer_504_and_leak_no_connection`: with a 2-connection pool, a
//! 300 ms statement timeout and a 200 ms pool wait, writes to a row locked from outside
//! the gateway answer 504 problem+json naming the shard. They run two at a time, so a
//! connection kept by a failed write would leave the next pair one short: its second
//! write would wait 200 ms for a connection and answer 503 (saturated) instead of 504.
//! Once the lock is gone, 200 writes and reads to the shard all succeed.

use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection};
use futures_util::future::join;
use reqwest::StatusCode;
use serde_json::Value;
use shard_manager::servers::connection_url;
use test_app::{assert_problem, prepare_database, test_settings};
use test_support::outage::{serial, DropDatabase};

use crate::support::{keys_on, Gateway, RowLock};
use shard_manager::servers::encode;

#[tokio::test]
async fn statement_timeouts_answer_504_and_leak_no_connection() {
    let _serial = serial().await;
    // Prepared with the usual 5 s statement timeout: CREATE DATABASE on a busy machine
    // can take longer than the 300 ms the gateway gets below.
    let mut settings = test_settings();
    prepare_database(&mut settings).await;
    let _db = DropDatabase(settings.cluster.database.dbname.clone());
    let shard = 1;
    let primary = connection_url(
        &settings.cluster.database,
        &settings.cluster.shards[shard].primary,
    );
    let db = &mut settings.cluster.database;
    db.pool_max_size = 2;
    db.statement_timeout_ms = 300;
    db.pool_wait_timeout_ms = 200;
    let key = &keys_on(&settings, shard, 1)[0];
    let gateway = Gateway::start(settings).await;
    let res = gateway.write(key, key).await;
    let status = res.status();
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        res.text().await.unwrap_or_default()
    );

    let lock = RowLock::hold(PgConnection::establish(&primary).unwrap(), key, key).await;
    for round in 0..5 {
        let start = Instant::now();
        let (a, b) = join(gateway.write(key, key), gateway.write(key, key)).await;
        let elapsed = start.elapsed();
        for res in [a, b] {
            let body = assert_problem(res, 504).await;
            assert_eq!(
                body["type"], "urn:shardgate:problem:timeout",
                "round {round}: {body}"
            );
            assert_eq!(body["shard"], shard as u32);
            let detail = body["detail"].as_str().unwrap();
            assert!(
                detail.contains("shard-1") && detail.contains("300 ms"),
                "{detail}"
            );
        }
        // Bounded by the statement timeout, not by the 1.3 s operation bound.
        assert!(
            elapsed < Duration::from_millis(1200),
            "round {round} took {elapsed:?}"
        );
    }
    lock.release();

    let strong = format!(
        "/api/read?table=users&id={}&consistency=strong",
        encode(key)
    );
    let mut failures = Vec::new();
    for i in 0..100 {
        let res = gateway.write(key, key).await;
        if res.status() != StatusCode::OK {
            let status = res.status();
            failures.push(format!("write {i}: {status} {}", res.text().await.unwrap()));
        }
        let res = gateway.get(key, &strong).await;
        if res.status() != StatusCode::OK {
            let status = res.status();
            failures.push(format!("read {i}: {status} {}", res.text().await.unwrap()));
            continue;
        }
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["source"], "primary");
    }
    assert!(failures.is_empty(), "after the timeouts: {failures:#?}");
}
