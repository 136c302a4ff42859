//! The Redis read-through cache: hits, invalidation by every kind of write, TTL, and
//! never a version older than an acknowledged write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use serde_json::{json, Value};
use test_app::{assert_problem, spawn_app_with, TestApp};

async fn cached_app(ttl_secs: u64) -> TestApp {
    spawn_app_with(|s| {
        s.cluster.cache.enabled = true;
        s.cluster.cache.timeout_ms = 100;
        s.cluster.cache.ttl_secs = ttl_secs;
        s.cluster.cache.prefix = format!("sgtest-{}", uuid::Uuid::new_v4().simple());
    })
    .await
}

/// (x-cache header, source, version, data) of a point read.
async fn read(app: &TestApp, key: &str, id: &str) -> (String, String, i64, Value) {
    let res = app.read(key, "users", id).await;
    assert_eq!(res.status().as_u16(), 200);
    let cache = res.headers()["x-cache"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    let record = &body["record"];
    (
        cache,
        body["source"].as_str().unwrap().to_owned(),
        record["version"].as_i64().unwrap(),
        record["data"].clone(),
    )
}

/// Puts a row in the shard behind the gateway's back, so the cache has never seen it,
/// and waits until the replica has it.
async fn insert_directly(app: &TestApp, key: &str, id: &str) {
    let shard = app.shard_of(key).index();
    let mut conn = app.connect(&app.primary(shard));
    diesel::sql_query(format!(
        "INSERT INTO records (table_name, shard_key, id, slot, data) VALUES ('users', '{key}', '{id}', 0, '{{\"direct\": true}}')"
    ))
    .execute(&mut conn)
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.read(key, "users", id).await.status().as_u16() != 200 {
        assert!(Instant::now() < deadline, "replica never showed the row");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_miss_fills_the_cache_and_every_write_kind_updates_it() {
    let app = cached_app(300).await;
    insert_directly(&app, "c1", "u1").await;

    // A read installs what it read only when its server had applied everything up to
    // the gateway's cache fence (a replica a little behind installs nothing): the
    // entry is there within a few reads, never a different version.
    let (_, _, v0, _) = read(&app, "c1", "u1").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let (second, source, v1, data) = loop {
        let got = read(&app, "c1", "u1").await;
        if got.0 == "hit" || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((second.as_str(), source.as_str()), ("hit", "cache"));
    assert_eq!((v0, v1), (v0, v0));
    assert_eq!(data, json!({"direct": true}));

    let w: Value = app
        .write(
            "c1",
            &json!({"table": "users", "id": "u1", "data": {"n": 2}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let (hit, _, v, data) = read(&app, "c1", "u1").await;
    assert_eq!(
        (hit.as_str(), v, data),
        ("hit", w["version"].as_i64().unwrap(), json!({"n": 2})),
        "write-through"
    );

    let b: Value = app
        .bulk(
            Some("c1"),
            &json!({"table": "users", "records": [{"id": "u1", "data": {"n": 3}}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(b["written"], 1);
    let (hit, _, v, data) = read(&app, "c1", "u1").await;
    assert_eq!(
        (hit.as_str(), data),
        ("hit", json!({"n": 3})),
        "bulk writes update the cache"
    );
    assert!(v > w["version"].as_i64().unwrap());

    assert_eq!(app.delete("c1", "users", "u1").await.status().as_u16(), 204);
    assert_problem(app.read("c1", "users", "u1").await, 404).await;

    app.write("c1", &json!({"table": "users", "id": "u2", "data": {}}))
        .await;
    let strong = app.read_strong("c1", "users", "u2").await;
    assert_eq!(strong.headers()["x-cache"], "bypass");
    assert_eq!(strong.json::<Value>().await.unwrap()["source"], "primary");
}

#[tokio::test]
async fn a_miss_is_reported_then_a_hit_and_entries_expire_with_their_ttl() {
    let app = cached_app(1).await;
    let key = "ttl";
    let shard = app.shard_of(key).index();
    // Inserted on the primary and read strongly first: nothing is cached yet.
    let mut conn = app.connect(&app.primary(shard));
    diesel::sql_query(format!(
        "INSERT INTO records (table_name, shard_key, id, slot, data) VALUES ('users', '{key}', 't', 0, '{{}}')"
    ))
    .execute(&mut conn)
    .unwrap();
    let strong = app.read_strong(key, "users", "t").await;
    assert_eq!(strong.headers()["x-cache"], "bypass");

    let (miss, _, _, _) = read(&app, key, "t").await;
    let (hit, source, _, _) = read(&app, key, "t").await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (expired, _, _, _) = read(&app, key, "t").await;

    assert_eq!(
        miss, "hit",
        "the strong read installed it (a primary read is never stale)"
    );
    assert_eq!((hit.as_str(), source.as_str()), ("hit", "cache"));
    assert_eq!(expired, "miss", "1 s TTL");
    let metrics: Value = app.get_json("/api/analytics/metrics").await;
    assert_eq!(
        metrics["totals"]["cache"]["hits"], 2,
        "{}",
        metrics["totals"]["cache"]
    );
    assert_eq!(metrics["totals"]["cache"]["misses"], 1);
}

#[tokio::test]
async fn under_concurrent_writes_no_hit_is_older_than_an_acknowledged_write() {
    let app = Arc::new(cached_app(300).await);
    let ids = ["h0", "h1", "h2"];
    let acked: Arc<HashMap<&str, AtomicI64>> =
        Arc::new(ids.iter().map(|id| (*id, AtomicI64::new(0))).collect());
    let hits = Arc::new(AtomicU64::new(0));
    let checks = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs(4);
    let mut tasks = Vec::new();
    for w in 0..3 {
        let (app, acked) = (app.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while Instant::now() < stop {
                let id = ids[(w + n) % ids.len()];
                let res = app
                    .write(
                        "hot",
                        &json!({"table": "users", "id": id, "data": {"w": w, "n": n}}),
                    )
                    .await;
                let v = res.json::<Value>().await.unwrap()["version"]
                    .as_i64()
                    .unwrap();
                acked[id].fetch_max(v, Ordering::SeqCst);
                n += 1;
            }
        }));
    }
    for r in 0..6 {
        let (app, acked, hits, checks) = (app.clone(), acked.clone(), hits.clone(), checks.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while Instant::now() < stop {
                let id = ids[(r + n) % ids.len()];
                let floor = acked[id].load(Ordering::SeqCst);
                let strong = n % 5 == 0;
                let res = if strong {
                    app.read_strong("hot", "users", id).await
                } else {
                    app.read("hot", "users", id).await
                };
                n += 1;
                if res.status().as_u16() != 200 {
                    continue;
                }
                let hit = res.headers().get("x-cache").is_some_and(|v| v == "hit");
                let v = res.json::<Value>().await.unwrap()["record"]["version"]
                    .as_i64()
                    .unwrap();
                if hit || strong {
                    assert!(
                        v >= floor,
                        "{id}: served v{v} after v{floor} was acknowledged (hit={hit})"
                    );
                    checks.fetch_add(1, Ordering::Relaxed);
                }
                if hit {
                    hits.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (hits, checks) = (hits.load(Ordering::Relaxed), checks.load(Ordering::Relaxed));
    println!("cache race: {checks} checked reads, {hits} cache hits, none stale");
    assert!(hits > 100, "the cache served: {hits} hits");
}

#[tokio::test]
async fn cache_keys_are_namespaced_and_bounded_whatever_the_key() {
    let app = cached_app(300).await;
    let prefix = app.settings.cluster.cache.prefix.clone();
    let long_key = "k".repeat(256);
    let long_id = "i".repeat(256);
    app.write(
        &long_key,
        &json!({"table": "users", "id": long_id, "data": {"pretty": {"a": 1}}}),
    )
    .await;

    let client = redis::Client::open(app.settings.cluster.cache.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();

    assert_eq!(keys.len(), 2, "value and version floor: {keys:?}");
    for k in &keys {
        assert!(k.len() < 120, "bounded: {k}");
    }
    let value_key = keys.iter().find(|k| k.ends_with(":v")).unwrap();
    let value: String = redis::cmd("GET")
        .arg(value_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        !value.contains(' ') && !value.contains('\n'),
        "compact JSON: {value}"
    );
}

/// Every HTTP worker opens its Redis connection as it starts, and the memory tier its
/// own: no request pays the connect (nor the scripts' load) within the cache's timeout, which on a busy machine
/// cost a worker's first write its cache install and raised its shard's epoch.
#[tokio::test]
async fn every_worker_holds_a_redis_connection_before_its_first_request() {
    use test_app::gateway_process::Process;
    use test_support::outage::DropDatabase;
    use test_support::sockets::established_to;

    let mut settings = test_app::test_settings();
    test_app::prepare_database(&mut settings).await;
    let _db = DropDatabase(settings.cluster.database.dbname.clone());
    let redis_port = reqwest::Url::parse(&settings.cluster.cache.url)
        .ok()
        .and_then(|url| url.port())
        .expect("the cache URL names a port");
    let connections = |process: &Process| established_to(process.pid(), redis_port);

    // The cache off: no worker connects to Redis at all.
    let off = Process::start(&settings.cluster.database.dbname, &[]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(connections(&off), 0, "cache off, yet connected to Redis");
    drop(off);

    // The cache on, two workers (`Process::start`), and not one request sent.
    let prefix = format!("sgtest-{}", uuid::Uuid::new_v4().simple());
    let env = [
        ("SHARDGATE__CACHE__ENABLED", "true"),
        ("SHARDGATE__CACHE__PREFIX", prefix.as_str()),
    ];
    let on = Process::start(&settings.cluster.database.dbname, &env).await;
    // One a worker, and the memory tier's tracking connection (on by default).
    let deadline = Instant::now() + Duration::from_secs(10);
    while connections(&on) < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        connections(&on),
        3,
        "one Redis connection per worker and the memory tier's before any request:\n{}",
        on.output()
    );
}
