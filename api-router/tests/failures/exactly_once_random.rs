//! Exactly once under everything at once, randomized: clients send single writes and
//! bulk writes, each with a fresh `Idempotency-Key`, through two real gateways with the
//! cache on, and retry the same request with the same key on the other gateway until it
//! is acknowledged (no answer, a 5xx, a 207); meanwhile slots move back and forth and one
//! gateway is killed (-9) and replaced. Readers check every cache hit against what was
//! acknowledged before the read was sent. At the end every record is stored once, on
//! its owner, with its last acknowledged value, and a record last written by a single
//! write holds the version that write answered (a second application would have moved
//! it). The seed is printed (`SG_SEED` replays a run).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use test_app::gateway_process::Process;
use test_app::{spawn_app, TestApp};
use test_support::outage::serial;

use crate::movers::{assert_done, check_placement, move_id, mover_process};

const CLIENTS: usize = 4;
const KEYS_EACH: usize = 5;
const OPS_EACH: usize = 30;

/// The gateways' ports; a killed one is replaced in place.
type Ports = Arc<Mutex<Vec<u16>>>;
/// Per shard key: the last acknowledged value, and the version a single write answered
/// for it (None when a bulk write acknowledged it last).
type Acked = Arc<Mutex<HashMap<String, (i64, Option<i64>)>>>;

fn port(ports: &Ports, i: usize) -> u16 {
    let ports = ports.lock().unwrap();
    ports[i % ports.len()]
}

/// Sends one request until it is acknowledged, switching gateway after each failure;
/// the answer's body.
async fn until_acked(
    client: &reqwest::Client,
    ports: &Ports,
    (path, shard_key, key): (&str, Option<&str>, &str),
    body: &Value,
    mut turn: usize,
) -> Value {
    for _ in 0..200 {
        let mut req = client
            .post(format!("http://127.0.0.1:{}{path}", port(ports, turn)))
            .header("idempotency-key", key)
            .json(body);
        if let Some(k) = shard_key {
            req = req.header("x-shard-key", k);
        }
        turn += 1;
        let Ok(res) = req.send().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let status = res.status().as_u16();
        let answer: Value = res.json().await.unwrap_or(Value::Null);
        match status {
            200 | 201 => return answer,
            207 | 429 | 500..=599 => tokio::time::sleep(Duration::from_millis(20)).await,
            _ => panic!("{path} with key {key}: {status} {answer}"),
        }
    }
    panic!("{path} with key {key} never acknowledged");
}

async fn client_run(id: usize, seed: u64, ports: Ports, acked: Acked) {
    let mut rng = StdRng::seed_from_u64(seed ^ id as u64);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let keys: Vec<String> = (0..KEYS_EACH).map(|k| format!("rnd-{id}-{k}")).collect();
    for op in 0..OPS_EACH {
        let n = (op + 1) as i64;
        let key = format!("rnd-{seed}-{id}-{op}");
        let turn = rng.random_range(0..2);
        if rng.random_bool(0.6) {
            let k = &keys[rng.random_range(0..KEYS_EACH)];
            let body = json!({"table": "users", "id": "r", "data": {"n": n}});
            let answer =
                until_acked(&http, &ports, ("/api/write", Some(k), &key), &body, turn).await;
            let version = answer["version"].as_i64().expect("a version");
            acked.lock().unwrap().insert(k.clone(), (n, Some(version)));
        } else {
            let mut picked: Vec<&String> = keys.iter().filter(|_| rng.random_bool(0.5)).collect();
            if picked.is_empty() {
                picked.push(&keys[0]);
            }
            let records: Vec<Value> = picked
                .iter()
                .map(|k| json!({"shard_key": k, "id": "r", "data": {"n": n}}))
                .collect();
            let body = json!({"table": "users", "records": records});
            let answer =
                until_acked(&http, &ports, ("/api/bulk-write", None, &key), &body, turn).await;
            assert_eq!(answer["written"], picked.len(), "{answer}");
            let mut acked = acked.lock().unwrap();
            for k in picked {
                acked.insert(k.clone(), (n, None));
            }
        }
    }
}

/// Eventual reads through the gateways until `stop`: a cache hit must never be older
/// than what was acknowledged before the read was sent. How many hits it checked.
async fn reader(ports: Ports, acked: Acked, stop: Arc<AtomicBool>) -> usize {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut hits = 0;
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let k = format!("rnd-{}-{}", i % CLIENTS, (i / CLIENTS) % KEYS_EACH);
        let before = acked.lock().unwrap().get(&k).map_or(0, |a| a.0);
        let res = http
            .get(format!(
                "http://127.0.0.1:{}/api/read?table=users&id=r",
                port(&ports, i)
            ))
            .header("x-shard-key", &k)
            .send()
            .await;
        let Ok(res) = res else { continue };
        let hit = res.headers().get("x-cache").is_some_and(|v| v == "hit");
        if res.status().as_u16() != 200 || !hit {
            continue;
        }
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let n = body["record"]["data"]["n"].as_i64().unwrap_or(-1);
        assert!(
            n >= before,
            "{k}: cache hit n={n}, but n={before} was acknowledged"
        );
        hits += 1;
    }
    hits
}

/// A gateway with the cache on; `die` arms its kill point (`after-commit:n`: the n-th
/// write it commits kills it before the cache hears of it or the client is answered).
async fn gateway(app: &TestApp, prefix: &str, die: Option<&str>) -> Process {
    let db = app.settings.cluster.database.dbname.clone();
    // Redis answers here: the test checks the strict promise, a hit never older than an
    // acknowledged write. With the default 10 ms bound, a Redis call that a loaded CI
    // machine delays past it makes the writer raise the shard's epoch instead, after
    // which another gateway may serve the previous version until its next check: that
    // documented bound has its own test (`cache_shared`), not this one.
    let mut env = vec![
        ("SHARDGATE__CACHE__ENABLED", "true"),
        ("SHARDGATE__CACHE__PREFIX", prefix),
        ("SHARDGATE__CACHE__TIMEOUT_MS", "1000"),
    ];
    if let Some(step) = die {
        env.push(("SHARDGATE_FAULT_KILL_GATEWAY", step));
    }
    Process::start(&db, &env).await
}

#[tokio::test]
async fn keyed_writes_retried_across_gateways_while_slots_move_and_a_gateway_dies() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let seed = crate::support::seed("exactly_once_random");
    let prefix = format!("sgtest-{}", uuid::Uuid::new_v4().simple());
    let mut first = gateway(&app, &prefix, Some("after-commit:25")).await;
    let second = gateway(&app, &prefix, None).await;
    let ports: Ports = Arc::new(Mutex::new(vec![first.port, second.port]));
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));

    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| tokio::spawn(client_run(id, seed, ports.clone(), acked.clone())))
        .collect();
    let readers = tokio::spawn(reader(ports.clone(), acked.clone(), stop.clone()));

    let db = app.settings.cluster.database.dbname.clone();
    let settings = app.settings.cluster.clone();
    let there = mover_process(&db, "start:0:1:64", None).await;
    assert!(there.success, "{}", there.output);
    assert_done(&settings, move_id(&there.output)).await;

    // The first gateway dies mid-run, after a commit and before telling the cache or
    // the client (whose retry the other gateway answers), and is replaced.
    first.died_within(Duration::from_secs(60)).await;
    let third = gateway(&app, &prefix, None).await;
    ports.lock().unwrap()[0] = third.port;

    let back = mover_process(&db, "start:1:0:64", None).await;
    assert!(back.success, "{}", back.output);
    assert_done(&settings, move_id(&back.output)).await;

    for c in clients {
        c.await.expect("a client failed");
    }
    stop.store(true, Ordering::Relaxed);
    let hits = readers.await.expect("a reader failed");
    eprintln!("cache hits checked: {hits}");

    let acked = acked.lock().unwrap().clone();
    // Every cache hit now is the last acknowledged value.
    let http = reqwest::Client::new();
    for (k, (n, _)) in &acked {
        for port in [second.port, third.port] {
            let res = http
                .get(format!("http://127.0.0.1:{port}/api/read?table=users&id=r"))
                .header("x-shard-key", k)
                .send()
                .await
                .unwrap();
            if res.headers().get("x-cache").is_some_and(|v| v == "hit") {
                let body: Value = res.json().await.unwrap();
                assert_eq!(
                    body["record"]["data"]["n"].as_i64(),
                    Some(*n),
                    "{k}: a stale hit"
                );
            }
        }
    }
    let values: HashMap<String, i64> = acked.iter().map(|(k, a)| (k.clone(), a.0)).collect();
    check_placement(&app, &values).await;
    for (k, (n, version)) in &acked {
        let body: Value = app.read_strong(k, "users", "r").await.json().await.unwrap();
        assert_eq!(
            body["record"]["data"]["n"].as_i64(),
            Some(*n),
            "{k}: the last acknowledged value"
        );
        if let Some(v) = version {
            assert_eq!(
                body["record"]["version"].as_i64(),
                Some(*v),
                "{k}: written more than once"
            );
        }
    }
    drop(second);
    drop(third);
}
