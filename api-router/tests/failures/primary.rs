//! A shard whose primary (or every server) is down fails fast and alone.
//!
//! - `writes_to_a_shard_without_primary_fail_fast_and_alone`: with shard 2's primary
//!   stopped, a write there answers 503 problem+json naming `shard-2` (and `shard: 2`)
//!   with `Retry-After` in under 2 s; eventual reads of its records still come from its
//!   replica; shards 0 and 1 keep taking writes; `/api/health` is 503 and shows the
//!   primary down. Started again, the same gateway writes to shard 2 again.
//! - `reads_fail_fast_when_every_server_of_a_shard_is_down`: with shard 1's primary and
//!   replica both stopped, eventual and strong reads there answer 503 naming `shard-1`
//!   in under 2 s, other shards still read, and reads recover once both are back.

use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde_json::Value;
use test_app::{assert_problem, spawn_app, TestApp};
use test_support::outage::{serial, DropDatabase, Node, Outage};

use crate::support::{keys_on, until, until_replica_serves, user};

/// Asserts a fast 503 problem naming the shard, with `Retry-After`.
async fn assert_unavailable(res: Response, elapsed: Duration, shard: u32) -> Value {
    assert!(
        elapsed < Duration::from_secs(2),
        "answered after {elapsed:?}"
    );
    let retry_after = res.headers().get("retry-after").cloned();
    let body = assert_problem(res, 503).await;
    assert!(retry_after.is_some(), "503 without Retry-After: {body}");
    assert_eq!(body["type"], "urn:shardgate:problem:shard-unavailable");
    assert_eq!(body["shard"], shard, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("shard-{shard}")), "{detail}");
    body
}

async fn timed<F: std::future::Future<Output = Response>>(f: F) -> (Response, Duration) {
    let start = Instant::now();
    let res = f.await;
    (res, start.elapsed())
}

async fn write_all(app: &TestApp, keys: &[String]) {
    for key in keys {
        let res = app.write(key, &user(key)).await;
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "{key}: {:?}",
            res.text().await
        );
    }
}

#[tokio::test]
async fn writes_to_a_shard_without_primary_fail_fast_and_alone() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let _db = DropDatabase(app.settings.cluster.database.dbname.clone());
    let on2 = keys_on(&app.settings, 2, 4);
    let (before, during) = on2.split_at(2);
    write_all(&app, before).await;
    for key in before {
        until_replica_serves(&app, key).await;
    }

    let outage = Outage::begin(&[Node::Primary(2)]).await;
    for key in during {
        let (res, elapsed) = timed(app.write(key, &user(key))).await;
        let body = assert_unavailable(res, elapsed, 2).await;
        assert!(
            body["detail"].as_str().unwrap().contains(&app.primary(2)),
            "{body}"
        );
    }
    for key in before {
        let res = app.read(key, "users", key).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["source"], "replica", "{body}");
        assert_eq!(body["record"]["data"], user(key)["data"]);
    }
    let (res, elapsed) = timed(app.read_strong(&before[0], "users", &before[0])).await;
    assert_unavailable(res, elapsed, 2).await;
    for shard in [0, 1] {
        write_all(&app, &keys_on(&app.settings, shard, 3)).await;
    }
    let res = app.client.get(app.url("/api/health")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let health: Value = res.json().await.unwrap();
    assert_eq!(health["healthy"], false);
    let primary = &health["shards"][2]["primary"];
    assert_eq!(primary["up"], false, "{primary}");
    assert!(
        primary["error"]
            .as_str()
            .is_some_and(|e| e.contains("shard-2")),
        "{primary}"
    );
    assert_eq!(health["shards"][2]["replicas"][0]["up"], true, "{health}");
    assert_eq!(health["shards"][0]["primary"]["up"], true, "{health}");

    outage.end().await;
    let key = &during[0];
    let (status, took) = until(
        Duration::from_secs(10),
        "writes to shard 2 again",
        || async {
            let status = app.write(key, &user(key)).await.status();
            status.is_success().then_some(status)
        },
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    eprintln!("shard 2 took writes again {took:?} after its primary was back");
    let res = app.client.get(app.url("/api/health")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn reads_fail_fast_when_every_server_of_a_shard_is_down() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let _db = DropDatabase(app.settings.cluster.database.dbname.clone());
    let key = &keys_on(&app.settings, 1, 1)[0];
    let other = &keys_on(&app.settings, 0, 1)[0];
    write_all(&app, &[key.clone(), other.clone()]).await;
    until_replica_serves(&app, key).await;

    let outage = Outage::begin(&[Node::Replica(1), Node::Primary(1)]).await;
    // The first read finds the replica down (and bans it), the second skips it.
    for _ in 0..2 {
        let (res, elapsed) = timed(app.read(key, "users", key)).await;
        assert_unavailable(res, elapsed, 1).await;
    }
    let (res, elapsed) = timed(app.read_strong(key, "users", key)).await;
    assert_unavailable(res, elapsed, 1).await;
    let res = app.read(other, "users", other).await;
    assert_eq!(res.status(), StatusCode::OK, "shard 0 is unaffected");

    outage.end().await;
    let (_, took) = until(Duration::from_secs(10), "shard 1 reads again", || async {
        (app.read(key, "users", key).await.status() == StatusCode::OK).then_some(())
    })
    .await;
    eprintln!("shard 1 answered reads {took:?} after both servers were back");
}
