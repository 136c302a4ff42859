//! A write whose connection is lost after its commit is never applied twice, and the
//! cache never answers with what it replaced (test-only fault point, feature `faults`).
//! Sent without a key: through a gateway that keys every write (the default) it is sent
//! again under the gateway's key and answered once, as the commit left it; through one
//! that does not (`failover.key_every_write = false`) it answers 503.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use test_app::{assert_problem, spawn_app_with, TestApp};

async fn cached_app(key_every_write: bool) -> TestApp {
    spawn_app_with(|s| {
        s.cluster.failover.key_every_write = key_every_write;
        s.cluster.cache.enabled = true;
        s.cluster.cache.timeout_ms = 100;
        s.cluster.cache.prefix = format!("sgtest-{}", uuid::Uuid::new_v4().simple());
    })
    .await
}

/// (status, x-cache, version) of an eventual point read; a server error is shown whole.
async fn eventual(app: &TestApp, key: &str) -> (u16, String, Option<i64>) {
    let res = app.read(key, "users", "r").await;
    let status = res.status().as_u16();
    let cache = res
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: Value = res.json().await.unwrap();
    // 503 is backpressure on a machine running every test at once: the loops retry it.
    assert!(
        status < 500 || status == 503,
        "eventual read answered {status}: {body}"
    );
    (status, cache, body["record"]["version"].as_i64())
}

fn lose_next_commit(app: &TestApp, key: &str) {
    let shard = app.shard_of(key).index();
    app.cluster.shards()[shard]
        .primary
        .faults
        .lose_connection_after_commit(1);
}

#[tokio::test]
async fn a_write_losing_its_connection_after_commit_is_answered_once_under_the_gateways_key() {
    let app = cached_app(true).await;
    let key = "user-commit-loss-keyed";
    let write = |v: u32| json!({"table": "users", "id": "r", "data": {"v": v}});
    let zero: Value = app.write(key, &write(0)).await.json().await.unwrap();
    let first: Value = app.write(key, &write(1)).await.json().await.unwrap();
    let v1 = first["version"].as_i64().unwrap();
    let step = v1 - zero["version"].as_i64().unwrap();

    // The commit's answer lost: sent again under the gateway's key, whose record
    // answers with the first commit's answer. The client sent once, so nothing says
    // "replayed".
    lose_next_commit(&app, key);
    let res = app.write(key, &write(2)).await;
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.headers().get("idempotency-replayed").is_none());
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["version"], v1 + step, "{answer}");
    let strong: Value = app
        .read_strong(key, "users", "r")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        strong["record"]["version"],
        v1 + step,
        "applied once: {strong}"
    );
    assert_eq!(strong["record"]["data"], json!({"v": 2}));
    // Never served older from the cache once acknowledged.
    let (_, cache, version) = eventual(&app, key).await;
    assert!(
        !(cache == "hit" && version < Some(v1 + step)),
        "a cache hit older than the acknowledged write: {version:?}"
    );

    // A delete likewise: 204 once, then gone.
    lose_next_commit(&app, key);
    let res = app.delete(key, "users", "r").await;
    assert_eq!(res.status().as_u16(), 204);
    assert_problem(app.read_strong(key, "users", "r").await, 404).await;
}

#[tokio::test]
async fn a_write_losing_its_connection_after_commit_is_applied_once_and_not_served_stale() {
    let app = cached_app(false).await;
    let key = "user-commit-loss";
    let write = |v: u32| json!({"table": "users", "id": "r", "data": {"v": v}});
    let zero: Value = app.write(key, &write(0)).await.json().await.unwrap();
    // An upsert's step in the version sequence, measured: a double apply is two steps.
    let first: Value = app.write(key, &write(1)).await.json().await.unwrap();
    let v1 = first["version"].as_i64().unwrap();
    let step = v1 - zero["version"].as_i64().unwrap();
    // The writer cached version 1.
    let (_, cache, version) = eventual(&app, key).await;
    assert_eq!((cache.as_str(), version), ("hit", Some(v1)));

    lose_next_commit(&app, key);
    let res = app.write(key, &write(2)).await;
    let problem = assert_problem(res, 503).await;
    assert_eq!(problem["shard"], app.shard_of(key).0);

    // Committed once: one version step, the new data.
    let strong: Value = app
        .read_strong(key, "users", "r")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(strong["record"]["version"], v1 + step, "{strong}");
    assert_eq!(strong["record"]["data"], json!({"v": 2}));

    // Eventual reads reach the new state and never hit the replaced version. A miss is
    // read on a replica, which may be behind by up to `max_lag_ms` (5 s): an older
    // version, or 404 before it replays the record's creation, but never a cache hit.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, cache, version) = eventual(&app, key).await;
        assert!(matches!(status, 200 | 404 | 503), "{status} ({cache})");
        assert!(
            !(cache == "hit" && version < Some(v1 + step)),
            "a cache hit older than the committed write: {version:?}"
        );
        if version == Some(v1 + step) {
            break;
        }
        assert!(Instant::now() < deadline, "never saw the committed write");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A delete losing its connection after commit: 503, never 404; then it is gone.
    lose_next_commit(&app, key);
    let res = app.delete(key, "users", "r").await;
    assert_problem(res, 503).await;
    assert_problem(app.read_strong(key, "users", "r").await, 404).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, cache, _) = eventual(&app, key).await;
        assert!(
            !(status == 200 && cache == "hit"),
            "a deleted record served from the cache"
        );
        if status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "the delete never showed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
