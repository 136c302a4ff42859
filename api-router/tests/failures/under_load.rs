//! The load the planned- and unplanned-operation tests put on the gateway while a
//! shard's primary changes hands: closed-loop keyed writers (each write its own
//! `Idempotency-Key`, never resent by the client), a keyed bulk writer, a keyed
//! transaction client across two shards, readers, writers without a key, and a watcher
//! of `/api/shards`; what the clients saw, and the checks on it afterwards.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use test_app::TestApp;
use test_support::{repo_root, setup_script};

use crate::support::keys_on;

/// The keys the load writes under, and what was written before it.
pub struct Keys {
    /// 12 keys on each shard.
    pub keys: Vec<String>,
    /// Pairs of keys on shards 1 and 2, for the transactions.
    pub pairs: Vec<(String, String)>,
    /// A record under each key, written before the load, for the readers.
    pub before: Vec<(String, String)>,
}

impl Keys {
    /// The keys, with a record written under each.
    pub async fn written(app: &TestApp) -> Self {
        let keys: Vec<String> = (0..3).flat_map(|s| keys_on(&app.settings, s, 12)).collect();
        let pairs = keys_on(&app.settings, 1, 6)
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
        Self {
            keys,
            pairs,
            before,
        }
    }
}

/// Closed-loop keyed writers.
pub const WRITERS: usize = 8;

/// The slowest answer the p99 of every kind may take.
pub const P99: Duration = Duration::from_millis(1500);

/// An acknowledged record: shard key, table, id, and its version when the answer gave it.
pub type Acked = (String, &'static str, String, Option<i64>);

/// What the clients saw: every answer's latency, the failures, and what was
/// acknowledged.
#[derive(Default)]
pub struct Seen {
    pub latencies: Mutex<Vec<(&'static str, Duration)>>,
    pub failures: Mutex<Vec<String>>,
    pub acked: Mutex<Vec<Acked>>,
    pub sent: AtomicUsize,
    /// Writes sent without a key and answered `503 may-have-committed`: (key, id).
    pub in_doubt: Mutex<Vec<(String, String)>>,
}

impl Seen {
    /// Records one answer of `kind`: a failure unless 2xx (a transport error too).
    pub async fn answer(
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

    pub fn ack(&self, key: &str, table: &'static str, id: &str, version: Option<i64>) {
        let acked = (key.to_owned(), table, id.to_owned(), version);
        self.acked.lock().unwrap().push(acked);
    }
}

/// Puts every formation's primary back on its first node unless the test ended well.
pub struct Home;

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
pub async fn writer(app: &TestApp, keys: &[String], n: usize, stop: &AtomicBool, seen: &Seen) {
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
pub async fn bulk_writer(app: &TestApp, keys: &[String], stop: &AtomicBool, seen: &Seen) {
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
pub async fn transactor(app: &TestApp, pairs: &[(String, String)], stop: &AtomicBool, seen: &Seen) {
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
pub async fn reader(app: &TestApp, before: &[(String, String)], stop: &AtomicBool, seen: &Seen) {
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
pub async fn watcher(app: &TestApp, stop: &AtomicBool) -> (u64, Vec<u64>) {
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
pub fn p99_and_max(seen: &Seen, kind: &str) -> (usize, Duration, Duration) {
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

/// One write without a key of a record of its own after another, until `stop`: a 2xx
/// is acknowledged, a `503 may-have-committed` kept in doubt, anything else a failure.
pub async fn unkeyed_writer(
    app: &TestApp,
    keys: &[String],
    n: usize,
    stop: &AtomicBool,
    seen: &Seen,
) {
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let key = &keys[(n * 5 + i) % keys.len()];
        let id = format!("u{n}_{i}");
        let body = json!({"table": "users", "id": id, "data": {"n": i}});
        let started = Instant::now();
        let sent = app
            .post_json_request("/api/write", Some(key), &body)
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        seen.sent.fetch_add(1, Ordering::Relaxed);
        let took = started.elapsed();
        seen.latencies.lock().unwrap().push(("unkeyed write", took));
        let failure = match sent {
            Err(e) => format!("unkeyed write: no answer after {took:?}: {e}"),
            Ok(res) if res.status().is_success() => {
                let answer: Value = res.json().await.unwrap_or(Value::Null);
                seen.ack(key, "users", &id, answer["version"].as_i64());
                continue;
            }
            Ok(res) => {
                let status = res.status().as_u16();
                let answer: Value = res.json().await.unwrap_or(Value::Null);
                if status == 503 && answer["type"] == "urn:shardgate:problem:may-have-committed" {
                    seen.in_doubt.lock().unwrap().push((key.clone(), id));
                    continue;
                }
                format!("unkeyed write: {status} after {took:?}: {answer}")
            }
        };
        seen.failures.lock().unwrap().push(failure);
    }
}

impl Seen {
    /// Every request answered 2xx (writes without a key: or `may-have-committed`), and
    /// every acknowledged record read back written once.
    pub async fn assert_all_answered_and_written_once(&self, app: &TestApp) {
        let failures = self.failures.lock().unwrap().clone();
        let sent = self.sent.load(Ordering::Relaxed);
        assert!(
            failures.is_empty(),
            "{} of {sent} requests failed; the first: {:#?}",
            failures.len(),
            &failures[..failures.len().min(10)]
        );
        let acked = self.acked.lock().unwrap().clone();
        assert_eq!(
            not_written_once(app, &acked).await,
            Vec::<String>::new(),
            "of {} acknowledged records, these were not read back as written once",
            acked.len()
        );
    }
}

/// Every acknowledged record read back (strong), written once: a second application
/// would show as an update (`updated_at` after `created_at`) and, for a single write,
/// as a version past the one its answer gave. The records that were not.
async fn not_written_once(app: &TestApp, acked: &[Acked]) -> Vec<String> {
    let mut wrong = Vec::new();
    for (key, table, id, version) in acked {
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
    wrong
}
