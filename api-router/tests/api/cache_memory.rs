//! The cache's memory tier, against the real Redis and two gateways: a hot record answers
//! from memory with no trip to Redis; a write through the other gateway evicts it; the
//! tier empties when its tracking connection is killed and refills once it is back; and
//! a gateway's own acknowledged write is never stale in its tier.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use test_app::{spawn_app_with, TestApp};

use crate::metrics_lint::{metrics_text, promtool_lint};

/// Gateway A (memory tier on, as by default) and gateway B on the same shards, Redis
/// and prefix.
async fn two_gateways() -> (TestApp, TestApp) {
    let a = spawn_app_with(|s| {
        s.cluster.cache.enabled = true;
        s.cluster.cache.timeout_ms = 100;
        s.cluster.cache.prefix = format!("sgtest-{}", uuid::Uuid::new_v4().simple());
    })
    .await;
    assert!(a.settings.cluster.cache.memory_entries > 0, "on by default");
    let b = a.beside().await;
    (a, b)
}

/// One sample's value in `/metrics` text (0 when absent).
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// (memory hits, Redis round trips counted by requests, entries held, flushes,
/// invalidations) of a gateway now.
async fn figures(app: &TestApp) -> [f64; 5] {
    let text = metrics_text(app).await;
    [
        sample(&text, "shardgate_cache_memory_hits_total"),
        sample(&text, "shardgate_cache_redis_duration_seconds_count"),
        sample(&text, "shardgate_cache_memory_entries"),
        sample(&text, "shardgate_cache_memory_flushes_total"),
        sample(&text, "shardgate_cache_memory_invalidations_total"),
    ]
}

/// Writes users/`id` through `app`; returns its version.
async fn write(app: &TestApp, key: &str, id: &str, n: i64) -> i64 {
    let res = app
        .write(key, &json!({"table": "users", "id": id, "data": {"n": n}}))
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    let body: Value = res.json().await.unwrap();
    body["version"].as_i64().unwrap()
}

/// (x-cache, version) of an eventual read; None for a 404 (a replica behind the write).
async fn read(app: &TestApp, key: &str, id: &str) -> Option<(String, i64)> {
    let res = app.read(key, "users", id).await;
    if res.status().as_u16() == 404 {
        return None;
    }
    assert_eq!(res.status().as_u16(), 200);
    let cache = res.headers()["x-cache"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    Some((cache, body["record"]["version"].as_i64().unwrap()))
}

/// Reads through `app` until a read is answered from its memory tier with `version`.
async fn until_in_memory(app: &TestApp, key: &str, id: &str, version: i64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let before = figures(app).await[0];
        let got = read(app, key, id).await;
        if let Some((_, v)) = got {
            assert!(
                v <= version,
                "read {v}, newer than the newest write {version}"
            );
        }
        if got.map(|(_, v)| v) == Some(version) && figures(app).await[0] > before {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "version {version} never answered from memory"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_hot_record_is_answered_from_memory_without_a_trip_to_redis() {
    let (a, b) = two_gateways().await;
    let v1 = write(&a, "mem-hot", "r1", 1).await;
    until_in_memory(&a, "mem-hot", "r1", v1).await;

    let [hits0, trips0, entries, _, _] = figures(&a).await;
    assert!(
        entries >= 2.0,
        "the entry and its shard's marker: {entries}"
    );
    let started = Instant::now();
    for _ in 0..20 {
        let (cache, v) = read(&a, "mem-hot", "r1").await.expect("cached");
        assert_eq!((cache.as_str(), v), ("hit", v1));
    }
    let elapsed = started.elapsed();
    let [hits1, trips1, ..] = figures(&a).await;
    let (from_memory, trips) = (hits1 - hits0, trips1 - trips0);
    // Every read a hit, each from memory but for a trip per lease (500 ms) that
    // renews the tracking connection's vouching.
    assert_eq!(from_memory + trips, 20.0, "{from_memory} + {trips}");
    let leases = (elapsed.as_millis() / 500) as f64 + 1.0;
    assert!(
        trips <= leases,
        "{trips} trips to Redis in {elapsed:?}: at most one per lease"
    );
    if let Some(lint) = promtool_lint(&a).await {
        assert_eq!(lint, "", "promtool check metrics");
    }
    b.handle.stop(false).await;
}

#[tokio::test]
async fn a_write_through_another_gateway_evicts_the_entry_from_memory() {
    let (a, b) = two_gateways().await;
    let (key, id) = ("mem-other", "r1");
    let mut version = write(&b, key, id, 0).await;
    until_in_memory(&a, key, id, version).await;
    let invalidations0 = figures(&a).await[4];

    const WRITES: usize = 500;
    // How long after B's acknowledgement A first answered the new version (an upper
    // bound of the invalidation's delay: the read's own time is in it), and how many
    // reads answered the old one before.
    let mut delays = Vec::with_capacity(WRITES);
    let mut old_reads = 0;
    for n in 1..=WRITES as i64 {
        // A holds the current version (read twice: the second from memory).
        read(&a, key, id).await;
        read(&a, key, id).await;
        let written = write(&b, key, id, n).await;
        assert!(written > version);
        version = written;
        let acked = Instant::now();
        loop {
            let (_, v) = read(&a, key, id).await.expect("cached or on a replica");
            if v >= version {
                delays.push(acked.elapsed());
                break;
            }
            old_reads += 1;
            assert!(
                acked.elapsed() < Duration::from_secs(5),
                "A served {v} for 5 s after B acknowledged {version}"
            );
        }
        // Once A answered the new version, never an older one.
        for _ in 0..2 {
            let (_, v) = read(&a, key, id).await.expect("cached");
            assert!(v >= version, "A went back to {v} after serving {version}");
        }
    }
    let invalidations = figures(&a).await[4] - invalidations0;
    assert!(
        invalidations >= WRITES as f64,
        "{invalidations} invalidations for {WRITES} writes held in memory"
    );
    delays.sort();
    let at = |q: f64| delays[((delays.len() - 1) as f64 * q) as usize];
    eprintln!(
        "memory tier: another gateway's write seen by A within p50 {:?}, p99 {:?}, max {:?} of its acknowledgement ({} writes; {} reads answered the old version first)",
        at(0.5),
        at(0.99),
        delays[delays.len() - 1],
        WRITES,
        old_reads
    );
    b.handle.stop(false).await;
}

/// The Redis client ids of the connections named `name` (CLIENT LIST): both gateways'
/// tracking connections, which share the prefix and so the name.
async fn client_ids(redis: &mut redis::aio::MultiplexedConnection, name: &str) -> Vec<i64> {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(redis)
        .await
        .unwrap();
    let named = format!(" name={name} ");
    list.lines()
        .filter(|l| l.contains(&named))
        .filter_map(|l| l.strip_prefix("id=")?.split(' ').next()?.parse().ok())
        .collect()
}

#[tokio::test]
async fn killing_the_tracking_connection_empties_the_tier_until_it_is_back() {
    let (a, b) = two_gateways().await;
    let (key, id) = ("mem-kill", "r1");
    let v1 = write(&a, key, id, 1).await;
    until_in_memory(&a, key, id, v1).await;
    let client = redis::Client::open(a.settings.cluster.cache.url.as_str()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let name = format!("{}-tier", a.settings.cluster.cache.prefix);
    let first = client_ids(&mut redis, &name).await;
    assert_eq!(first.len(), 2, "both gateways' tracking connections, named");
    let [_, _, entries, flushes0, _] = figures(&a).await;
    assert!(entries >= 2.0);

    // Both: which of the two is A's, the list does not say.
    for id in &first {
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert_eq!(killed, 1);
    }
    // The disconnection empties the tier.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let [_, _, entries, flushes, _] = figures(&a).await;
        if flushes > flushes0 && entries == 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "not emptied: {entries} entries");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Nobody tracks A's keys now: a write through B must still be seen by A.
    let v2 = write(&b, key, id, 2).await;
    let (_, v) = read(&a, key, id).await.expect("cached");
    assert!(v >= v2, "A served {v} after B acknowledged {v2}");

    // A new tracking connection, and the tier refills.
    until_in_memory(&a, key, id, v2).await;
    let second = client_ids(&mut redis, &name).await;
    assert!(
        second.iter().any(|id| !first.contains(id)),
        "tracking again on a new connection: {second:?} after {first:?}"
    );
    let v3 = write(&b, key, id, 3).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while read(&a, key, id).await.expect("cached").1 < v3 {
        assert!(Instant::now() < deadline, "B's write never reached A");
    }
    b.handle.stop(false).await;
}

#[tokio::test]
async fn an_own_write_is_never_stale_in_memory_even_with_readers_racing_it() {
    let (a, b) = two_gateways().await;
    let (key, id) = ("mem-own", "r1");
    let v0 = write(&a, key, id, 0).await;
    until_in_memory(&a, key, id, v0).await;

    // Readers keep filling the tier while the writes land.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (client, url, stop) = (
            a.client.clone(),
            a.url(&format!("/api/read?table=users&id={id}")),
            stop.clone(),
        );
        readers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = client.get(&url).header("x-shard-key", key).send().await;
            }
        }));
    }
    let hits0 = figures(&a).await[0];
    for n in 1..=100 {
        let written = write(&a, key, id, n).await;
        let (_, v) = read(&a, key, id).await.expect("the write's own entry");
        assert!(
            v >= written,
            "A served {v} right after acknowledging {written}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    assert!(
        figures(&a).await[0] > hits0,
        "the racing readers were answered from memory too"
    );
    b.handle.stop(false).await;
}
