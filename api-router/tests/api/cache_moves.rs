//! Slots that change hands leave no stale cache entry behind, even for a gateway that
//! still routes with the old map: a move raises the source's cache epoch as it switches
//! and tells every cache in use (the prefixes gateways list) that the old epoch is
//! retired before it stores the next map; the target's alike as the move starts.

use std::time::{Duration, Instant};

use diesel::sql_types::BigInt;
use diesel::RunQueryDsl;
use serde_json::{json, Value};
use shard_manager::routing::ShardId;
use test_app::move_slots;
use test_app::{spawn_app_with, TestApp};

async fn cached_app() -> (TestApp, String) {
    let prefix = format!("sgtest-{}", uuid::Uuid::new_v4().simple());
    let p = prefix.clone();
    let app = spawn_app_with(move |s| {
        s.cluster.cache.enabled = true;
        s.cluster.cache.timeout_ms = 200;
        s.cluster.cache.prefix = p;
    })
    .await;
    (app, prefix)
}

#[derive(diesel::QueryableByName)]
struct EpochRow {
    #[diesel(sql_type = BigInt)]
    epoch: i64,
}

/// `shard`'s cache epoch as stored on its primary.
fn stored_epoch(app: &TestApp, shard: usize) -> u64 {
    let mut conn = app.connect(&app.primary(shard));
    let rows: Vec<EpochRow> = diesel::sql_query("SELECT epoch FROM shardgate_cache")
        .load(&mut conn)
        .expect("read the cache epoch");
    rows[0].epoch as u64
}

/// Reads users/r1 under `key`: (x-cache, n).
async fn read(app: &TestApp, key: &str) -> (String, i64) {
    let res = app.read(key, "users", "r1").await;
    assert_eq!(res.status().as_u16(), 200);
    let cache = res.headers()["x-cache"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    (cache, body["record"]["data"]["n"].as_i64().unwrap())
}

/// Reads until one is a hit; panics after `within`.
async fn until_hit(app: &TestApp, key: &str, within: Duration) -> i64 {
    let deadline = Instant::now() + within;
    loop {
        let (cache, n) = read(app, key).await;
        if cache == "hit" {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "{key} was never served from the cache"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(diesel::QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Waits until `shard`'s replica shows users/r1 under `key`; panics after 10 s.
async fn replica_has(app: &TestApp, shard: usize, key: &str) {
    let mut conn = app.connect(&app.replica(shard));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows: Vec<CountRow> = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM records WHERE table_name = 'users' \
             AND shard_key = '{key}' AND id = 'r1'"
        ))
        .load(&mut conn)
        .expect("read the replica");
        if rows[0].n == 1 {
            return;
        }
        assert!(Instant::now() < deadline, "the replica never showed {key}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The retired-epoch marker of `shard` under `prefix`, as Redis holds it.
async fn marker(app: &TestApp, prefix: &str, shard: usize) -> Option<u64> {
    let client = redis::Client::open(app.settings.cluster.cache.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let got: Option<String> = redis::cmd("GET")
        .arg(format!("{prefix}:{shard}:below"))
        .query_async(&mut conn)
        .await
        .unwrap();
    got.map(|v| v.parse().unwrap())
}

#[tokio::test]
async fn an_epoch_retired_in_redis_is_served_by_no_gateway_whatever_it_knows() {
    let (app, prefix) = cached_app().await;
    let key = "retired-epoch";
    let res = app
        .write(
            key,
            &json!({"table": "users", "id": "r1", "data": {"n": 1}}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let shard = res.json::<Value>().await.unwrap()["shard"]
        .as_u64()
        .expect("the write names its shard") as usize;
    assert_eq!(until_hit(&app, key, Duration::from_secs(5)).await, 1);
    // The reads below bypass the cache and go to the replica, which an eventual read may
    // find behind the acknowledged write on a busy machine: wait until it has it.
    replica_has(&app, shard, key).await;

    // Retired in Redis only: the gateway still knows the old epoch from the shard, yet
    // serves nothing of it, and installs nothing into it.
    let epoch = stored_epoch(&app, shard);
    shard_manager::cache::retire(
        &app.settings.cluster.cache.url,
        std::slice::from_ref(&prefix),
        ShardId(shard as u32),
        epoch + 1,
        Duration::from_secs(1),
    )
    .await
    .expect("retire");
    assert_eq!(marker(&app, &prefix, shard).await, Some(epoch + 1));
    for _ in 0..10 {
        let (cache, n) = read(&app, key).await;
        assert_ne!(cache, "hit", "an entry of a retired epoch was served");
        assert_eq!(n, 1);
    }
    // A marker never goes down.
    shard_manager::cache::retire(
        &app.settings.cluster.cache.url,
        std::slice::from_ref(&prefix),
        ShardId(shard as u32),
        epoch,
        Duration::from_secs(1),
    )
    .await
    .expect("retire");
    assert_eq!(marker(&app, &prefix, shard).await, Some(epoch + 1));

    // Once the shard's epoch is raised, the gateway adopts it within a check, and the
    // cache serves again.
    let mut conn = app.connect(&app.primary(shard));
    diesel::sql_query("UPDATE shardgate_cache SET epoch = epoch + 1")
        .execute(&mut conn)
        .unwrap();
    assert_eq!(until_hit(&app, key, Duration::from_secs(5)).await, 1);
}

#[tokio::test]
async fn a_move_tells_every_cache_a_gateway_reads_that_both_old_epochs_are_retired() {
    let (app, prefix) = cached_app().await;
    // The mover itself has no cache: it learns the prefix from the gateways' heartbeats.
    let mut settings = app.settings.cluster.clone();
    settings.cache.enabled = false;
    settings.cache.prefix = "not-this-one".into();
    let (source_before, target_before) = (stored_epoch(&app, 0), stored_epoch(&app, 1));
    move_slots(&settings, 0, 1, 1).await;

    let (source, target) = (stored_epoch(&app, 0), stored_epoch(&app, 1));
    assert!(
        source > source_before,
        "the switch raised the source's epoch"
    );
    assert!(
        target > target_before,
        "the start raised the target's epoch"
    );
    assert_eq!(marker(&app, &prefix, 0).await, Some(source));
    assert_eq!(marker(&app, &prefix, 1).await, Some(target));
    assert_eq!(marker(&app, "not-this-one", 0).await, None);
}
