//! Backpressure: a shard whose pool stays busy answers 503 with Retry-After after a
//! short wait instead of queueing without bound; the request deadline answers 504.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use serde_json::json;
use test_app::{assert_problem, spawn_app_with};

#[tokio::test]
async fn a_busy_pool_answers_503_with_retry_after_and_a_deadline_answers_504() {
    let app = spawn_app_with(|s| {
        s.cluster.database.pool_max_size = 1;
        s.cluster.database.pool_wait_timeout_ms = 150;
        s.server.request_timeout_ms = 800;
    })
    .await;
    let key = "busy";
    let shard = app.shard_of(key).index();
    app.write(key, &json!({"table": "users", "id": "locked", "data": {}}))
        .await;
    // Hold the row in another session so the next write of it waits on the lock.
    let mut locker = app.connect(&app.primary(shard));
    locker
        .batch_execute("BEGIN; SELECT * FROM records WHERE id = 'locked' FOR UPDATE;")
        .unwrap();
    let blocked = {
        let app_url = app.url("/api/write");
        let client = app.client.clone();
        tokio::spawn(async move {
            client
                .post(app_url)
                .header("x-shard-key", key)
                .json(&json!({"table": "users", "id": "locked", "data": {"v": 2}}))
                .send()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    let res = app
        .write(key, &json!({"table": "users", "id": "other", "data": {}}))
        .await;
    let waited = started.elapsed();

    assert_eq!(res.headers()["retry-after"], "1");
    let body = assert_problem(res, 503).await;
    assert_eq!(body["shard"], json!(shard));
    assert!(body["detail"].as_str().unwrap().contains("saturated"));
    assert!(
        waited < Duration::from_millis(700),
        "answered after the pool wait, not a hang: {waited:?}"
    );

    let timed_out = assert_problem(blocked.await.unwrap(), 504).await;
    assert!(timed_out["detail"].as_str().unwrap().contains("800 ms"));
    locker.batch_execute("ROLLBACK").unwrap();
    let after = app
        .write(key, &json!({"table": "users", "id": "other", "data": {}}))
        .await;
    assert_eq!(
        after.status().as_u16(),
        201,
        "the pool recovers once the lock is gone"
    );
}
