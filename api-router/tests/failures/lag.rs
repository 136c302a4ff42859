//! A replica that falls behind (replay paused for real with `pg_wal_replay_pause()`)
//! stops taking reads while writes continue, and takes them again once it catches up.

use std::time::Duration;

use serde_json::Value;
use test_app::spawn_app_with;
use test_support::outage::serial;

use crate::support::{keys_on, until, user, ReplayPaused};

/// The replica's entry in `/api/shards`.
async fn replica_view(app: &test_app::TestApp, shard: usize) -> Value {
    let body: Value = app.get_json("/api/shards").await;
    body["shards"][shard]["servers"][1].clone()
}

#[tokio::test]
async fn a_lagging_replica_takes_no_reads_until_it_catches_up() {
    let _serial = serial().await;
    let app = spawn_app_with(|s| {
        s.cluster.replication.check_interval_ms = 100;
        s.cluster.replication.max_lag_ms = 300;
    })
    .await;
    let shard = 0;
    let keys = keys_on(&app.settings, shard, 3);
    until(Duration::from_secs(5), "replica takes reads", || async {
        (replica_view(&app, shard).await["takes_reads"] == true).then_some(())
    })
    .await;
    let paused = ReplayPaused::begin(format!("shard{shard}-replica0"));
    let (view, took) = until(
        Duration::from_secs(5),
        "replica excluded for lag",
        || async {
            app.write(&keys[0], &user("lagging")).await;
            let view = replica_view(&app, shard).await;
            (view["takes_reads"] == false).then_some(view)
        },
    )
    .await;
    let fresh = app.write(&keys[1], &user("fresh")).await;
    assert_eq!(fresh.status().as_u16(), 201);
    let read: Value = app
        .read(&keys[1], "users", "fresh")
        .await
        .json()
        .await
        .unwrap();

    assert!(
        view["not_taking_reads_because"]
            .as_str()
            .unwrap()
            .contains("lagging"),
        "{view}"
    );
    assert!(view["lag_ms"].as_u64().unwrap() > 300, "{view}");
    assert!(
        took < Duration::from_secs(3),
        "excluded within a few checks: {took:?}"
    );
    assert_eq!(read["source"], "primary", "a stale replica is not read");
    assert_eq!(read["record"]["id"], "fresh");

    drop(paused);
    until(
        Duration::from_secs(5),
        "replica back after resume",
        || async { (replica_view(&app, shard).await["takes_reads"] == true).then_some(()) },
    )
    .await;
    let (source, _) = until(
        Duration::from_secs(5),
        "reads from the replica again",
        || async {
            let body: Value = app
                .read(&keys[1], "users", "fresh")
                .await
                .json()
                .await
                .ok()?;
            (body["source"] == "replica").then_some(body["source"].clone())
        },
    )
    .await;
    assert_eq!(source, "replica");
}
