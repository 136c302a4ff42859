//! Planned operations under load, through the real HTTP API: clients writing keyed
//! records (each write its own `Idempotency-Key`, never retried by the client), reading,
//! bulk writing and running transactions across shards, while shard 1's primary is
//! handed to its replica and back (`shard-admin switchover`, on the topology's real
//! pg_auto_failover) and 16 slots move from shard 0 to shard 2 and 16 from shard 2 to
//! shard 0 (`shard-admin move-slots`). Every request is answered 2xx, their p99 stays
//! within 1.5 s, and every acknowledged write is read back once: each record is
//! written by one request only, so a second application would show as an update
//! (`updated_at` after `created_at`) and, for a single write, as a version past the one
//! its answer gave.
//!
//! Should the test fail between the switchovers, the topology's primaries are put
//! back on their first nodes (`./setup.sh ha home`) for the tests after it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use control_plane::failover::switchover::switchover;
use serde_json::{json, Value};
use shard_manager::ShardId;
use test_app::{move_slots, spawn_app, TestApp};
use test_support::outage::serial;
use test_support::{repo_root, setup_script};

use crate::support::{keys_on, metric_sum};

/// Closed-loop writers, as the load had.
const WRITERS: usize = 8;

/// The slowest answer the p99 of every kind may take.
const P99: Duration = Duration::from_millis(1500);

/// An acknowledged record: shard key, table, id, and its version when the answer gave it.
type Acked = (String, &'static str, String, Option<i64>);

/// What the clients saw: every answer's latency, the failures, and what was
/// acknowledged.
#[derive(Default)]
struct Seen {
    latencies: Mutex<Vec<(&'static str, Duration)>>,
    failures: Mutex<Vec<String>>,
    acked: Mutex<Vec<Acked>>,
    sent: AtomicUsize,
}

impl Seen {
    /// Records one answer of `kind`: a failure unless 2xx (a transport error too).
    async fn answer(
        &self,
        kind: &'static str,
        started: Instant,
        sent: Result<reqwest::Response, reqwest::Error>,
    ) -> Option<Value> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let took = started.elapsed();
        self.latencies.lock().unwrap().push((kind, took));
        let failure = match sent {
            Err(e) => format!("{kind}: no answer after {took:?}: {e}"),
            Ok(res) if res.status().is_success() => {
                return Some(res.json().await.unwrap_or(Value::Null))
            }
            Ok(res) => {
                let status = res.status().as_u16();
                let body = res.text().await.unwrap_or_default();
                format!("{kind}: {status} after {took:?}: {body}")
            }
        };
        self.failures.lock().unwrap().push(failure);
        None
    }

    fn ack(&self, key: &str, table: &'static str, id: &str, version: Option<i64>) {
        let acked = (key.to_owned(), table, id.to_owned(), version);
        self.acked.lock().unwrap().push(acked);
    }
}

/// Puts every formation's primary back on its first node unless the test ended well.
struct Home;

impl Drop for Home {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = std::process::Command::new(setup_script())
                .args(["ha", "home"])
                .current_dir(repo_root())
                .status();
        }
    }
}

/// One keyed single write of a record of its own after another, until `stop`.
async fn writer(app: &TestApp, keys: &[String], n: usize, stop: &AtomicBool, seen: &Seen) {
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let key = &keys[(n * 7 + i) % keys.len()];
        let id = format!("w{n}_{i}");
        let body = json!({"table": "users", "id": id, "data": {"n": i}});
        let started = Instant::now();
        let sent = app
            .post_json_request("/api/write", Some(key), &body)
            .header("idempotency-key", format!("pw-{n}-{i}"))
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        if let Some(answer) = seen.answer("write", started, sent).await {
            seen.ack(key, "users", &id, answer["version"].as_i64());
        }
    }
}

/// Keyed bulk writes of six records over every shard, until `stop`.
async fn bulk_writer(app: &TestApp, keys: &[String], stop: &AtomicBool, seen: &Seen) {
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let records: Vec<(String, String)> = (0..6)
            .map(|r| (keys[(i * 6 + r) % keys.len()].clone(), format!("b{i}_{r}")))
            .collect();
        let body = json!({"table": "events", "records": records.iter().map(|(k, id)| {
            json!({"shard_key": k, "id": id, "data": {"n": i}})
        }).collect::<Vec<_>>()});
        let started = Instant::now();
        let sent = app
            .post_json_request("/api/bulk-write", None, &body)
            .header("idempotency-key", format!("pb-{i}"))
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        if let Some(answer) = seen.answer("bulk", started, sent).await {
            if answer["written"] == 6 {
                for (key, id) in &records {
                    seen.ack(key, "events", id, None);
                }
            } else {
                let failure = format!("bulk: not every record written: {answer}");
                seen.failures.lock().unwrap().push(failure);
            }
        }
    }
}

/// Keyed transactions of two records on two shards (one on shard 1, whose primary
/// changes hands), until `stop`.
async fn transactor(app: &TestApp, pairs: &[(String, String)], stop: &AtomicBool, seen: &Seen) {
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let (a, b) = &pairs[i % pairs.len()];
        let (ida, idb) = (format!("ta{i}"), format!("tb{i}"));
        let body = json!({"operations": [
            {"table": "orders", "shard_key": a, "id": ida, "data": {"balance": i}},
            {"table": "orders", "shard_key": b, "id": idb, "data": {"balance": i}},
        ]});
        let started = Instant::now();
        let sent = app
            .post_json_request("/api/transaction", None, &body)
            .header("idempotency-key", format!("pt-{i}"))
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        if seen.answer("transaction", started, sent).await.is_some() {
            seen.ack(a, "orders", &ida, None);
            seen.ack(b, "orders", &idb, None);
        }
    }
}

/// Eventual point reads of records written before the load, until `stop`.
async fn reader(app: &TestApp, before: &[(String, String)], stop: &AtomicBool, seen: &Seen) {
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let (key, id) = &before[i % before.len()];
        let started = Instant::now();
        let sent = app
            .get(key, &format!("/api/read?table=users&id={id}"))
            .await;
        seen.answer("read", started, Ok(sent)).await;
    }
}

/// Polls `/api/shards` until `stop`, as the dashboard does: the most requests it showed
/// held at once, and the shards it showed being handed over.
async fn watcher(app: &TestApp, stop: &AtomicBool) -> (u64, Vec<u64>) {
    let (mut most, mut shards) = (0, Vec::new());
    while !stop.load(Ordering::Relaxed) {
        let view = app.get_json("/api/shards").await;
        most = most.max(view["held"]["now"].as_u64().unwrap_or(0));
        for h in view["held"]["handovers"].as_array().into_iter().flatten() {
            let shard = h["shard"].as_u64().unwrap_or(u64::MAX);
            if !shards.contains(&shard) {
                shards.push(shard);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (most, shards)
}

/// The p99 and the longest of the latencies of `kind`.
fn p99_and_max(seen: &Seen, kind: &str) -> (usize, Duration, Duration) {
    let mut took: Vec<Duration> = seen
        .latencies
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k == kind)
        .map(|(_, d)| *d)
        .collect();
    took.sort();
    let n = took.len();
    assert!(n > 0, "no {kind} was sent");
    (n, took[(n * 99 / 100).min(n - 1)], took[n - 1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn switchovers_and_slot_moves_under_load_fail_no_request() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let settings = app.settings.cluster.clone();
    if settings.failover.ha_monitor.is_none() {
        panic!("the topology runs no HA manager (HA=0): nothing to switch over");
    }
    let keys: Vec<String> = (0..3).flat_map(|s| keys_on(&app.settings, s, 12)).collect();
    let pairs: Vec<(String, String)> = keys_on(&app.settings, 1, 6)
        .into_iter()
        .zip(keys_on(&app.settings, 2, 6))
        .collect();
    let mut before = Vec::new();
    for (n, key) in keys.iter().enumerate() {
        let id = format!("before{n}");
        let res = app
            .write(key, &json!({"table": "users", "id": id, "data": {"n": n}}))
            .await;
        assert!(res.status().is_success(), "{}", res.status());
        before.push((key.clone(), id));
    }
    let (primary, replica) = (settings.shards[1].primary.clone(), app.replica(1));
    let home = Home;

    let stop = AtomicBool::new(false);
    let seen = Seen::default();
    let operations = async {
        let say = |s: &str| eprintln!("planned operations: {s}");
        tokio::time::sleep(Duration::from_secs(1)).await;
        for to in [&replica, &primary] {
            let done = switchover(&settings, ShardId(1), Some(to), "tester", say)
                .await
                .unwrap_or_else(|e| panic!("the switchover to {to}: {e}"));
            eprintln!(
                "switchover {} -> {}: writes waited {:?}",
                done.from, done.to, done.paused
            );
            assert!(done.old_is_standby, "{} back as a standby", done.from);
        }
        for (from, to) in [(0, 2), (2, 0)] {
            let done = move_slots(&settings, from, to, 16).await;
            eprintln!("move {from} -> {to}: writes paused {:?} ms", done.fence_ms);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::Relaxed);
    };
    let writers = (0..WRITERS).map(|n| writer(&app, &keys, n, &stop, &seen));
    let (_, _, _, _, _, _, (most_held, handed_over)) = tokio::join!(
        futures_util::future::join_all(writers),
        bulk_writer(&app, &keys, &stop, &seen),
        transactor(&app, &pairs, &stop, &seen),
        reader(&app, &before, &stop, &seen),
        reader(&app, &before, &stop, &seen),
        operations,
        watcher(&app, &stop),
    );
    drop(home);
    // The pause showed as it happened, as the dashboard draws it.
    eprintln!("/api/shards showed up to {most_held} requests held, handovers of {handed_over:?}");
    assert_eq!(handed_over, vec![1], "shard 1's handover shown");
    assert!(most_held > 0, "requests shown held during the switchovers");

    let failures = seen.failures.lock().unwrap().clone();
    let sent = seen.sent.load(Ordering::Relaxed);
    for kind in ["write", "bulk", "transaction", "read"] {
        let (n, p99, max) = p99_and_max(&seen, kind);
        eprintln!("{kind}: {n} answered, p99 {p99:?}, longest {max:?}");
        assert!(p99 <= P99, "{kind}: p99 {p99:?} over {P99:?}");
    }
    // The pauses were holds: handovers seen, requests held and released, none at a bound.
    let metric =
        |name: &'static str, with: &'static str| metric_sum(&app.client, &app.address, name, with);
    let handovers = metric("shardgate_handovers_total", "").await;
    let released = metric("shardgate_requests_held_total", "released").await;
    let timed_out = metric("shardgate_requests_held_total", "timed_out").await;
    let refused = metric("shardgate_requests_held_total", "refused_at_bound").await;
    eprintln!("{handovers} handovers; held requests: {released} released, {timed_out} timed out, {refused} refused at the bound");
    // (The second switchover may fall within the first one's hold: one handover.)
    assert!(handovers >= 1.0, "a handover seen: {handovers}");
    assert!(released > 0.0, "requests were held, then released");
    assert_eq!((timed_out, refused), (0.0, 0.0));
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed; the first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    // Every acknowledged record read back, written once.
    let acked = seen.acked.lock().unwrap().clone();
    let mut wrong = Vec::new();
    for (key, table, id, version) in &acked {
        let res = app.read_strong(key, table, id).await;
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let record = &body["record"];
        let once = record["updated_at"] == record["created_at"]
            && version.is_none_or(|v| record["version"] == v);
        if status != 200 || !once {
            wrong.push(format!(
                "{table}/{key}/{id} (acknowledged {version:?}): {status} {body}"
            ));
        }
    }
    assert_eq!(
        wrong,
        Vec::<String>::new(),
        "of {} acknowledged records, these were not read back as written once",
        acked.len()
    );
}
