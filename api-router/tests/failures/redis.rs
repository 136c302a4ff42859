//! Redis killed under a read loop: clients see no error, reads bypass the cache; once
//! Redis is back, hits resume without restarting the gateway.

use std::time::{Duration, Instant};

use serde_json::Value;
use test_app::{spawn_app_with, TestApp};
use test_support::outage::serial;
use test_support::setup_sh;

use crate::support::{blocking, user};

/// Stops Redis; starts it again however the test ends.
struct RedisDown;

impl RedisDown {
    async fn begin() -> Self {
        blocking(|| setup_sh(&["redis", "stop"])).await;
        Self
    }
}

impl Drop for RedisDown {
    fn drop(&mut self) {
        setup_sh(&["redis", "start"]);
    }
}

/// Reads for `for_`, returning (non-200 answers, x-cache values seen).
async fn read_loop(app: &TestApp, for_: Duration) -> (usize, Vec<String>) {
    let stop = Instant::now() + for_;
    let (mut errors, mut seen) = (0, Vec::new());
    let mut i = 0;
    while Instant::now() < stop {
        let id = format!("c{}", i % 10);
        let res = app.read("cached", "users", &id).await;
        if res.status().as_u16() != 200 {
            errors += 1;
        } else if let Some(v) = res.headers().get("x-cache") {
            seen.push(v.to_str().unwrap().to_owned());
        }
        i += 1;
    }
    (errors, seen)
}

#[tokio::test]
async fn killing_redis_costs_no_client_error_and_hits_resume_after_restart() {
    let _serial = serial().await;
    let app = spawn_app_with(|s| {
        s.cluster.cache.enabled = true;
        s.cluster.cache.timeout_ms = 20;
        s.cluster.cache.breaker_open_ms = 300;
        s.cluster.cache.prefix = format!("sgtest-{}", uuid::Uuid::new_v4().simple());
    })
    .await;
    for i in 0..10 {
        assert_eq!(
            app.write("cached", &user(&format!("c{i}")))
                .await
                .status()
                .as_u16(),
            201
        );
    }
    let (_, before) = read_loop(&app, Duration::from_millis(300)).await;
    assert!(before.iter().any(|v| v == "hit"));

    let redis = RedisDown::begin().await;
    let (errors_down, down) = read_loop(&app, Duration::from_secs(2)).await;
    drop(redis);
    let mut resumed = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !resumed && Instant::now() < deadline {
        let (_, seen) = read_loop(&app, Duration::from_millis(200)).await;
        resumed = seen.iter().any(|v| v == "hit");
    }
    let metrics: Value = app.get_json("/api/analytics/metrics").await;

    assert_eq!(errors_down, 0, "Redis down costs speed, never an error");
    assert!(
        down.len() > 20 && down.iter().all(|v| v == "bypass"),
        "{down:?}"
    );
    assert!(
        resumed,
        "hits resume once Redis is back, without a gateway restart"
    );
    assert!(
        metrics["totals"]["cache"]["errors"].as_u64().unwrap() > 0,
        "Redis errors are counted"
    );
}

/// After Redis returns, every HTTP worker serves hits again within 2 s: no worker keeps a
/// broken connection, or waits out a reconnect backoff, while the others recover.
#[tokio::test]
async fn every_worker_serves_hits_within_two_seconds_of_redis_returning() {
    let _serial = serial().await;
    let app = spawn_app_with(|s| {
        s.cluster.cache.enabled = true;
        s.cluster.cache.prefix = format!("sgtest-{}", uuid::Uuid::new_v4().simple());
    })
    .await;
    assert_eq!(
        app.write("cached", &user("c0")).await.status().as_u16(),
        201
    );
    let redis = RedisDown::begin().await;
    // Every worker meets the outage for a while (each new client connection lands on the
    // next one), long enough for reconnect attempts to back off.
    let down_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < down_until {
        let res = fresh_read(&app).await;
        assert_eq!(res.0, 200);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(redis); // returns once Redis answers
    let back = Instant::now();
    let recovered = loop {
        // One round: a read on each of 8 new connections, spread over the workers.
        let mut round = Vec::new();
        for _ in 0..8 {
            round.push(fresh_read(&app).await.1);
        }
        if round.iter().all(|v| v == "hit") {
            break back.elapsed();
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "still not all hits 5 s after Redis returned: {round:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        recovered <= Duration::from_secs(2),
        "every worker served hits only {recovered:?} after Redis returned"
    );
}

/// A point read on a new connection: (status, x-cache).
async fn fresh_read(app: &TestApp) -> (u16, String) {
    let client = reqwest::Client::new();
    let res = client
        .get(app.url("/api/read?table=users&id=c0"))
        .header("x-shard-key", "cached")
        .send()
        .await
        .unwrap();
    let cache = res
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (res.status().as_u16(), cache)
}

/// Redis slow past the cache's timeout, not gone (`CLIENT PAUSE`): the lookups that ask
/// it time out and bypass the cache, but the memory tier keeps what it holds, since a
/// slow reply still comes after every invalidation sent before it. Once Redis answers,
/// the held record answers from memory again, and the tier never emptied. (It used to:
/// the Redis client's own response timeout counted as a failed call on the tracking
/// connection, and each one emptied the tier.)
#[tokio::test]
async fn a_slow_redis_leaves_the_memory_tier_full() {
    let _serial = serial().await;
    let app = spawn_app_with(|s| {
        s.cluster.cache.enabled = true;
        s.cluster.cache.timeout_ms = 10;
        s.cluster.cache.breaker_open_ms = 50;
        s.cluster.cache.prefix = format!("sgtest-{}", uuid::Uuid::new_v4().simple());
    })
    .await;
    assert!(
        app.settings.cluster.cache.memory_entries > 0,
        "on by default"
    );
    assert_eq!(
        app.write("cached", &user("hot")).await.status().as_u16(),
        201
    );
    let metric = |name: &'static str| app.metric(name, "");
    // Read until the record answers from memory (a replica may first be behind).
    let held = Instant::now();
    loop {
        let hits = metric("shardgate_cache_memory_hits_total").await;
        assert_eq!(
            app.read("cached", "users", "hot").await.status().as_u16(),
            200
        );
        if metric("shardgate_cache_memory_hits_total").await > hits {
            break;
        }
        assert!(
            held.elapsed() < Duration::from_secs(10),
            "never answered from memory"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let flushes = metric("shardgate_cache_memory_flushes_total").await;
    let errors = metric("shardgate_cache_events_total{event=\"error\"}").await;

    // Redis answers nobody for 300 ms, well within the tier's 500 ms lease, while
    // reads of records the tier does not hold ask it, 40 times its 10 ms timeout.
    let client = redis::Client::open(app.settings.cluster.cache.url.as_str()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(300)
        .arg("ALL")
        .query_async(&mut redis)
        .await
        .unwrap();
    let paused = Instant::now();
    let reads = (0..20).map(|i| {
        let app = &app;
        async move {
            tokio::time::sleep(Duration::from_millis(10 * i)).await;
            app.read("cached", "users", &format!("cold-{i}"))
                .await
                .status()
                .as_u16()
        }
    });
    let answers = futures_util::future::join_all(reads).await;
    assert!(
        answers.iter().all(|s| *s == 404),
        "no error for a client: {answers:?}"
    );
    let waited = paused.elapsed();
    if waited < Duration::from_millis(350) {
        tokio::time::sleep(Duration::from_millis(350) - waited).await;
    }
    assert!(
        metric("shardgate_cache_events_total{event=\"error\"}").await > errors,
        "the lookups during the pause timed out"
    );
    assert_eq!(
        metric("shardgate_cache_memory_flushes_total").await,
        flushes,
        "a slow Redis emptied the memory tier"
    );
    let hits = metric("shardgate_cache_memory_hits_total").await;
    assert_eq!(
        app.read("cached", "users", "hot").await.status().as_u16(),
        200
    );
    assert_eq!(
        metric("shardgate_cache_memory_hits_total").await,
        hits + 1.0,
        "the held record answers from memory after the pause"
    );
}
