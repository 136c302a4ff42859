//! Version floors survive Redis losing every key (eviction at its most extreme): a
//! reader that read a record from a replica behind the newest write cannot put the older
//! version in the cache, so no hit is ever older than an acknowledged write.

use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use serde_json::{json, Value};
use test_app::{spawn_app_with, TestApp};
use test_support::outage::serial;

use crate::support::{keys_on, until, ReplayPaused};

/// (x-cache, source, version) of an eventual read.
async fn read(app: &TestApp, key: &str) -> (String, String, i64) {
    let res = app.read(key, "users", "r").await;
    assert_eq!(res.status().as_u16(), 200);
    let cache = res.headers()["x-cache"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    (
        cache,
        body["source"].as_str().unwrap().to_owned(),
        body["record"]["version"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn floors_survive_redis_losing_every_key() {
    let _serial = serial().await;
    let app = spawn_app_with(|s| {
        s.cluster.cache.enabled = true;
        s.cluster.cache.timeout_ms = 100;
        s.cluster.cache.prefix = format!("sgtest-{}", uuid::Uuid::new_v4().simple());
    })
    .await;
    let key = keys_on(&app.settings, 0, 1).remove(0);
    let write = |v: i64| json!({"table": "users", "id": "r", "data": {"v": v}});
    let first: Value = app.write(&key, &write(1)).await.json().await.unwrap();
    let v1 = first["version"].as_i64().unwrap();
    // The replica has version 1 before its replay stops.
    until(
        Duration::from_secs(5),
        "the replica has version 1",
        || async {
            let mut conn = app.connect(&app.replica(0));
            #[derive(diesel::QueryableByName)]
            struct N {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            let n: N = diesel::sql_query(format!(
                "SELECT count(*) AS n FROM records WHERE shard_key = '{key}' AND id = 'r'"
            ))
            .get_result(&mut conn)
            .unwrap();
            (n.n == 1).then_some(())
        },
    )
    .await;
    let paused = ReplayPaused::begin("shard0-replica0".into());

    let second: Value = app.write(&key, &write(2)).await.json().await.unwrap();
    let v2 = second["version"].as_i64().unwrap();
    assert!(v2 > v1);
    // Every key gone from Redis, the writer's floor among them.
    let client = redis::Client::open(app.settings.cluster.cache.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();

    // The replica still serves version 1 (eventual reads may lag); none of it may be
    // cached as a hit, however often it is read.
    let mut stale_reads = 0;
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let (cache, source, version) = read(&app, &key).await;
        assert!(
            !(cache == "hit" && version < v2),
            "a cache hit of version {version} after version {v2} was acknowledged"
        );
        if source == "replica" && version == v1 {
            stale_reads += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(paused);
    assert!(
        stale_reads > 0,
        "the test never read the older version from the replica"
    );
}
