//! A replayed answer fixes the cache before it is sent: when the first attempt with an
//! `Idempotency-Key` committed but never told the cache (its gateway died, the request
//! timed out, the client went away), the retry answers "replayed" and must not leave
//! the previous version (or a deleted record) to be served from Redis.
//!
//! The lost invalidation is staged by putting the record's cache entry (value and
//! version floor) back as it was before the first attempt, then sending the retry.

use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, RunQueryDsl};
use redis::aio::MultiplexedConnection;
use reqwest::Response;
use serde_json::{json, Value};
use test_app::{spawn_app_with, TestApp};

const KEY: &str = "idempotency-key";

async fn cached_app() -> TestApp {
    spawn_app_with(|s| {
        s.cluster.cache.enabled = true;
        s.cluster.cache.timeout_ms = 500;
        s.cluster.cache.ttl_secs = 300;
        s.cluster.cache.prefix = format!("sgtest-{}", uuid::Uuid::new_v4().simple());
    })
    .await
}

async fn redis(app: &TestApp) -> MultiplexedConnection {
    let client = redis::Client::open(app.settings.cluster.cache.url.as_str()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// Every key of the app's cache with its value: the record's entry and its floor.
async fn snapshot(app: &TestApp, conn: &mut MultiplexedConnection) -> Vec<(String, String)> {
    let prefix = &app.settings.cluster.cache.prefix;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(conn)
        .await
        .unwrap();
    let mut out = Vec::new();
    for k in keys {
        let v: String = redis::cmd("GET").arg(&k).query_async(conn).await.unwrap();
        out.push((k, v));
    }
    assert_eq!(out.len(), 2, "one record's value and floor: {out:?}");
    out
}

/// Puts the snapshot back: the first attempt's cache update as if it never happened.
async fn restore(conn: &mut MultiplexedConnection, entries: &[(String, String)]) {
    for (k, v) in entries {
        let () = redis::cmd("SET")
            .arg(k)
            .arg(v)
            .query_async(conn)
            .await
            .unwrap();
    }
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = BigInt)]
    version: i64,
}

/// Waits until the record's replica has `version` (None: the record is gone), so that
/// a read the cache does not answer finds it there.
async fn replica_has(app: &TestApp, table: &str, key: &str, id: &str, version: Option<i64>) {
    let shard = app.shard_of(key).index();
    let mut conn = app.connect(&app.replica(shard));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found: Vec<Version> = diesel::sql_query(
            "SELECT version FROM records WHERE table_name = $1 AND shard_key = $2 AND id = $3",
        )
        .bind::<Text, _>(table)
        .bind::<Text, _>(key)
        .bind::<Text, _>(id)
        .load(&mut conn)
        .unwrap();
        if found.first().map(|v| v.version) == version {
            return;
        }
        assert!(Instant::now() < deadline, "the replica never caught up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// (x-cache, version) of an eventual read, or None for a 404.
async fn eventual(app: &TestApp, table: &str, key: &str, id: &str) -> Option<(String, i64)> {
    let res = app.read(key, table, id).await;
    if res.status().as_u16() == 404 {
        return None;
    }
    assert_eq!(res.status().as_u16(), 200);
    let cache = res.headers()["x-cache"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    Some((cache, body["record"]["version"].as_i64().unwrap()))
}

async fn keyed(
    app: &TestApp,
    path: &str,
    shard_key: Option<&str>,
    key: &str,
    body: &Value,
) -> Response {
    app.post_json_request(path, shard_key, body)
        .header(KEY, key)
        .send()
        .await
        .unwrap()
}

fn replayed(res: &Response) -> bool {
    res.headers().get("idempotency-replayed").is_some()
}

async fn version(res: Response) -> i64 {
    let body: Value = res.json().await.unwrap();
    body["version"].as_i64().unwrap()
}

#[tokio::test]
async fn a_replayed_write_makes_the_cache_drop_the_version_before_it() {
    let app = cached_app().await;
    let mut conn = redis(&app).await;
    let old = version(
        app.write(
            "rc_w",
            &json!({"table": "users", "id": "a", "data": {"v": 0}}),
        )
        .await,
    )
    .await;
    let stale = snapshot(&app, &mut conn).await;
    let body = json!({"table": "users", "id": "a", "data": {"v": 1}});
    let first = keyed(&app, "/api/write", Some("rc_w"), "rc-write", &body).await;
    assert_eq!(first.status().as_u16(), 200);
    let new = version(first).await;
    assert!(new > old);
    replica_has(&app, "users", "rc_w", "a", Some(new)).await;

    restore(&mut conn, &stale).await;
    assert_eq!(
        eventual(&app, "users", "rc_w", "a").await.unwrap().1,
        old,
        "staged"
    );
    let again = keyed(&app, "/api/write", Some("rc_w"), "rc-write", &body).await;
    assert_eq!(again.status().as_u16(), 200);
    assert!(replayed(&again));
    assert_eq!(version(again).await, new);

    let (cache, seen) = eventual(&app, "users", "rc_w", "a").await.unwrap();
    assert_eq!(
        seen, new,
        "x-cache {cache}: the version before the replayed write"
    );
}

#[tokio::test]
async fn a_replayed_delete_makes_the_cache_forget_the_deleted_record() {
    let app = cached_app().await;
    let mut conn = redis(&app).await;
    let body = json!({"table": "users", "id": "d", "data": {"v": 0}});
    let old = version(app.write("rc_d", &body).await).await;
    let stale = snapshot(&app, &mut conn).await;
    let delete = || {
        app.client
            .delete(app.url("/api/delete?table=users&id=d"))
            .header("x-shard-key", "rc_d")
            .header(KEY, "rc-delete")
            .send()
    };
    assert_eq!(delete().await.unwrap().status().as_u16(), 204);
    replica_has(&app, "users", "rc_d", "d", None).await;

    restore(&mut conn, &stale).await;
    assert_eq!(
        eventual(&app, "users", "rc_d", "d").await.unwrap().1,
        old,
        "staged"
    );
    let again = delete().await.unwrap();
    assert_eq!(again.status().as_u16(), 204);
    assert!(replayed(&again));

    assert_eq!(
        eventual(&app, "users", "rc_d", "d").await,
        None,
        "the deleted record served"
    );
}

#[tokio::test]
async fn a_replayed_bulk_write_makes_the_cache_drop_the_versions_before_it() {
    let app = cached_app().await;
    let mut conn = redis(&app).await;
    let old = version(
        app.write(
            "rc_b",
            &json!({"table": "events", "id": "b", "data": {"v": 0}}),
        )
        .await,
    )
    .await;
    let stale = snapshot(&app, &mut conn).await;
    let batch = json!({"table": "events", "records": [
        {"shard_key": "rc_b", "id": "b", "data": {"v": 1}}
    ]});
    let first = keyed(&app, "/api/bulk-write", None, "rc-bulk", &batch).await;
    assert_eq!(first.status().as_u16(), 200);
    let res = app.read_strong("rc_b", "events", "b").await;
    let new = res.json::<Value>().await.unwrap()["record"]["version"].as_i64();
    assert!(new > Some(old));
    replica_has(&app, "events", "rc_b", "b", new).await;

    restore(&mut conn, &stale).await;
    assert_eq!(
        eventual(&app, "events", "rc_b", "b").await.unwrap().1,
        old,
        "staged"
    );
    let again = keyed(&app, "/api/bulk-write", None, "rc-bulk", &batch).await;
    assert_eq!(again.status().as_u16(), 200);
    assert!(replayed(&again));

    let (cache, seen) = eventual(&app, "events", "rc_b", "b").await.unwrap();
    assert_eq!(
        Some(seen),
        new,
        "x-cache {cache}: the version before the replayed write"
    );
}
