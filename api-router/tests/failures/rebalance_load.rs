//! `shard-admin rebalance --by load`: requests mostly to one shard's slots, as the
//! gateway publishes them, are planned (nothing changes) and evened out by online moves;
//! the same traffic afterwards gives the busiest shard the share the plan said, and no
//! record is lost. A single hot key is reported as what no slot move can fix.

use std::time::{Duration, Instant};

use control_plane::map::change;
use control_plane::moves::balance::{totals, Measure};
use futures_util::future::join_all;
use serde_json::{json, Value};
use shard_admin::commands::rebalance::{rebalance, RebalanceArgs};
use test_app::{spawn_app, TestApp};
use test_support::outage::serial;

fn args(apply: bool) -> RebalanceArgs {
    RebalanceArgs {
        plan: !apply,
        apply,
        by: Measure::Load,
        tolerance: 0.10,
    }
}

/// One write of each key, 16 at a time.
async fn write_each(app: &TestApp, keys: &[String], round: usize) {
    for chunk in keys.chunks(16) {
        let writes = chunk.iter().map(|k| async move {
            let body = json!({"table": "users", "id": format!("{k}-r"), "data": {"round": round}});
            app.write(k, &body).await
        });
        for res in join_all(writes).await {
            assert!(res.status().is_success(), "write: {}", res.status());
        }
    }
}

/// Each shard's requests over the last 10 s, as `/api/shards/load` gives them, once
/// they add up to `expected`.
async fn shard_requests(app: &TestApp, expected: u64) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let load: Value = app.get_json("/api/shards/load?scope=local").await;
        let per: Vec<u64> = (0..3)
            .map(|s| {
                load["shards"][s.to_string()]["10s"]["requests"]
                    .as_u64()
                    .unwrap_or(0)
            })
            .collect();
        if per.iter().sum::<u64>() == expected {
            return per;
        }
        assert!(
            Instant::now() < deadline,
            "load never added up to {expected}: {load:#}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn rebalance_by_load_moves_the_busy_shards_slots_and_its_share_falls() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let settings = app.settings.cluster.clone();
    // 300 keys on shard 0, 30 on each of the others: shard 0 takes 300 of 360 writes.
    let on = |shard: usize, n: usize| -> Vec<String> {
        (0..)
            .map(|i| format!("load-{shard}-{i}"))
            .filter(|k| app.shard_of(k).index() == shard)
            .take(n)
            .collect()
    };
    let keys: Vec<String> = [on(0, 300), on(1, 30), on(2, 30)].concat();
    write_each(&app, &keys, 0).await;
    let before_share = shard_requests(&app, 360).await;
    assert_eq!(before_share, [300, 30, 30]);
    // The gateway publishes every second; then the admin CLI reads its load.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let before = change::current(&settings).await.unwrap();
    let admin = settings.clone();
    let planned = tokio::task::spawn_blocking(move || rebalance(&admin, args(false)))
        .await
        .unwrap()
        .expect("plan");
    assert!(planned.contains("from shard-0"), "{planned}");
    assert!(planned.contains("requests/min"), "{planned}");
    assert!(planned.contains("plan only"), "{planned}");
    assert!(
        !planned.contains("fair share"),
        "no single key or slot is too hot: {planned}"
    );
    assert_eq!(change::current(&settings).await.unwrap(), before);

    let admin = settings.clone();
    let applied = tokio::task::spawn_blocking(move || rebalance(&admin, args(true)))
        .await
        .unwrap()
        .expect("apply");
    let after = change::current(&settings).await.unwrap();
    assert!(after.version.0 > before.version.0, "{applied}");
    // The plan, from the same per-slot weights: what each shard should take now.
    let weights: Vec<u64> = {
        let mut w = vec![0u64; after.owners.len()];
        for k in &keys {
            w[app
                .router()
                .route(shard_manager::ShardKey::parse(k).unwrap())
                .unwrap()
                .slot()
                .0 as usize] += 1;
        }
        w
    };
    let planned_after = totals(&after.owners, &weights, after.shards.len());
    let planned_max = *planned_after.iter().max().unwrap();
    assert!(planned_max <= 140, "planned {planned_after:?}\n{applied}");

    // The same traffic again, through the gateway following the new map.
    tokio::time::sleep(Duration::from_secs(11)).await;
    write_each(&app, &keys, 1).await;
    let now = shard_requests(&app, 360).await;
    assert_eq!(
        now, planned_after,
        "the busiest shard's share is the planned one\n{applied}"
    );
    assert!(now[0] < 150, "shard 0 still takes {now:?}");
    for k in keys.iter().step_by(37) {
        let res = app.read_strong(k, "users", &format!("{k}-r")).await;
        assert_eq!(res.status().as_u16(), 200, "{k}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["record"]["data"]["round"], 1, "{k}");
    }
}

#[tokio::test]
async fn a_key_hotter_than_a_shards_share_is_named_not_moved() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let settings = app.settings.cluster.clone();
    let hot = "the-viral-key".to_owned();
    let cold: Vec<String> = (0..30).map(|i| format!("cold-{i}")).collect();
    for round in 0..10 {
        write_each(&app, std::slice::from_ref(&hot), round).await;
        write_each(&app, std::slice::from_ref(&hot), round + 100).await;
    }
    write_each(&app, &cold, 0).await;
    shard_requests(&app, 50).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let admin = settings.clone();
    let planned = tokio::task::spawn_blocking(move || rebalance(&admin, args(false)))
        .await
        .unwrap()
        .expect("plan");
    assert!(
        planned.contains("key \"the-viral-key\"") && planned.contains("cache"),
        "{planned}"
    );
    assert!(
        planned.contains("moving it only moves the bottleneck"),
        "{planned}"
    );
}
