//! A replica that dies costs nothing but load on its primary.
//!
//! - `health_reports_a_dead_replica_and_its_return`: with shard 1's replica stopped,
//!   `/api/health` still answers 200 (every primary is up) and shows that replica down
//!   with a reason; once it is started again, the same running gateway reports it up
//!   with a numeric lag.
//! - `eventual_reads_fall_back_to_the_primary_without_errors`: stopping the replica
//!   under a stream of eventual reads makes none of them fail (`Shard::read` moves on
//!   to the primary when a server is unavailable); once the replica is back and its
//!   ban expired, reads are served by it again.
//! - `gateway_starts_while_a_replica_is_down`: a gateway built while shard 0's replica
//!   is down starts, writes and reads (from the primary), and uses the replica once it
//!   comes back, without a restart.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use test_app::{prepare_database, spawn_app, spawn_app_with, test_settings, TestApp};
use test_support::outage::{serial, DropDatabase, Node, Outage};

use crate::support::{keys_on, until, until_replica_serves, user, Gateway};

async fn health(app: &TestApp) -> (StatusCode, Value) {
    let res = app.client.get(app.url("/api/health")).send().await.unwrap();
    (res.status(), res.json().await.unwrap())
}

#[tokio::test]
async fn health_reports_a_dead_replica_and_its_return() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let _db = DropDatabase(app.settings.cluster.database.dbname.clone());
    let (status, body) = health(&app).await;
    assert_eq!(status, StatusCode::OK, "all up before the outage: {body}");

    let outage = Outage::begin(&[Node::Replica(1)]).await;
    let (status, body) = health(&app).await;

    assert_eq!(
        status,
        StatusCode::OK,
        "a replica down is not unhealthy: {body}"
    );
    assert_eq!(body["healthy"], true);
    let shard = &body["shards"][1];
    assert_eq!(shard["primary"]["up"], true, "{shard}");
    let replica = &shard["replicas"][0];
    assert_eq!(replica["server"], app.replica(1).as_str());
    assert_eq!(replica["up"], false, "{replica}");
    let error = replica["error"].as_str().expect("a down replica says why");
    assert!(
        error.contains("shard-1") && error.contains(&app.replica(1)),
        "{error}"
    );
    assert!(replica["lag_bytes"].is_null(), "{replica}");
    for other in [0, 2] {
        assert_eq!(body["shards"][other]["replicas"][0]["up"], true, "{body}");
    }

    outage.end().await;
    let (replica, took) = until(Duration::from_secs(10), "replica reported up", || async {
        let (_, body) = health(&app).await;
        let replica = body["shards"][1]["replicas"][0].clone();
        (replica["up"] == true && replica["lag_bytes"].is_u64()).then_some(replica)
    })
    .await;
    assert!(replica["error"].is_null(), "{replica}");
    eprintln!("health showed the restarted replica up after {took:?}");
}

#[tokio::test]
async fn eventual_reads_fall_back_to_the_primary_without_errors() {
    let _serial = serial().await;
    let app = spawn_app_with(|s| s.cluster.replication.ban_ms = 500).await;
    let _db = DropDatabase(app.settings.cluster.database.dbname.clone());
    let keys = keys_on(&app.settings, 1, 5);
    for key in &keys {
        assert_eq!(
            app.write(key, &user(key)).await.status(),
            StatusCode::CREATED
        );
        until_replica_serves(&app, key).await;
    }

    let outage = Outage::begin(&[Node::Replica(1)]).await;
    let mut failures = Vec::new();
    let mut slowest = Duration::ZERO;
    for i in 0..50 {
        let key = &keys[i % keys.len()];
        let start = Instant::now();
        let res = app.read(key, "users", key).await;
        slowest = slowest.max(start.elapsed());
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        if status != StatusCode::OK {
            failures.push((i, status, body));
            continue;
        }
        assert_eq!(body["source"], "primary", "replica is down: {body}");
        assert_eq!(body["shard"], 1);
        assert_eq!(body["record"]["id"], key.as_str());
    }
    assert!(
        failures.is_empty(),
        "reads failed with the replica down: {failures:?}"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "slowest read took {slowest:?}"
    );

    outage.end().await;
    let key = &keys[0];
    let (body, took) = until(
        Duration::from_secs(10),
        "reads back on the replica",
        || async {
            let res = app.read(key, "users", key).await;
            assert_eq!(res.status(), StatusCode::OK);
            let body: Value = res.json().await.unwrap();
            (body["source"] == "replica").then_some(body)
        },
    )
    .await;
    assert_eq!(body["record"]["data"], user(key)["data"]);
    eprintln!("reads returned to the replica {took:?} after it streamed again");
}

#[tokio::test]
async fn gateway_starts_while_a_replica_is_down() {
    let _serial = serial().await;
    let mut settings = test_settings();
    settings.cluster.replication.ban_ms = 500;
    prepare_database(&mut settings).await;
    let _db = DropDatabase(settings.cluster.database.dbname.clone());
    let keys = keys_on(&settings, 0, 3);

    let outage = Outage::begin(&[Node::Replica(0)]).await;
    let gateway = Gateway::start(settings).await;

    for key in &keys {
        let res = gateway.write(key, key).await;
        assert_eq!(res.status(), StatusCode::CREATED, "{:?}", res.text().await);
        let res = gateway.read(key, key).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["source"], "primary", "{body}");
        assert_eq!(body["record"]["id"], key.as_str());
    }
    let res = gateway.get(&keys[0], "/api/health").await;
    assert_eq!(res.status(), StatusCode::OK);

    outage.end().await;
    let key = &keys[0];
    // A replica back from an outage takes reads once its lag is within limits: how long
    // catching up takes depends on the WAL written meanwhile and on the machine's load.
    let (_, took) = until(
        Duration::from_secs(30),
        "reads from the returned replica",
        || async {
            let res = gateway.read(key, key).await;
            assert_eq!(res.status(), StatusCode::OK);
            let body: Value = res.json().await.unwrap();
            (body["source"] == "replica" && body["record"]["id"] == key.as_str()).then_some(())
        },
    )
    .await;
    eprintln!("the replica served reads {took:?} after it streamed again");
}
