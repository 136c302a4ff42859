//! A rolling restart of three gateways behind a real HAProxy, configured as
//! `GATEWAYS=3 ./setup.sh run` configures it (`server.drain_ms = 3000`, checks of
//! `/api/health/ready` every second): under writes (most with an `Idempotency-Key` of
//! their own, two writers without, which HAProxy never sends twice; none retried by
//! the client) and reads, each gateway in turn is
//! told to stop as SIGTERM tells it (it drains: not ready, still serving, then stops
//! accepting and finishes what it has), and a new one starts on its port. No request
//! fails, and every acknowledged write is read back written once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_router::server::drain::Shutdown;
use api_router::server::settings::Settings;
use api_router::startup::Application;
use serde_json::{json, Value};
use test_app::spawn_app_with;
use test_support::outage::serial;

use crate::load_balancer::{low_port, Haproxy};

/// Closed-loop writers and readers through the load balancer; the last
/// `UNKEYED` writers send no `Idempotency-Key`.
const WRITERS: usize = 8;
const UNKEYED: usize = 2;
const READERS: usize = 2;

/// A gateway on the test's databases, listening on `port`, and how to stop it.
async fn start_gateway(settings: &Settings, port: u16) -> Shutdown {
    let mut settings = settings.clone();
    settings.server.listen = format!("127.0.0.1:{port}");
    settings.server.drain_ms = 3000;
    let app = Application::build(settings).await.expect("build gateway");
    let shutdown = app.shutdown();
    tokio::spawn(app.run_until_stopped());
    shutdown
}

/// Waits until the gateway on `port` says it is ready.
async fn until_ready(client: &reqwest::Client, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let url = format!("http://127.0.0.1:{port}/api/health/ready");
        if client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway on {port} never got ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What one client saw: the failures, the (shard key, id) acknowledged, and when each
/// request was sent and how long it took.
#[derive(Default)]
struct Seen {
    sent: usize,
    failures: Vec<String>,
    acked: Vec<(String, String)>,
    took: Vec<(Instant, Duration)>,
}

impl Seen {
    /// The longest request that overlapped `from..to`.
    fn longest_within(&self, (from, to): (Instant, Instant)) -> Duration {
        self.took
            .iter()
            .filter(|(at, took)| *at <= to && *at + *took >= from)
            .map(|(_, took)| *took)
            .max()
            .unwrap_or_default()
    }
}

async fn writer(client: reqwest::Client, lb: String, n: usize, running: Arc<AtomicBool>) -> Seen {
    let mut seen = Seen::default();
    let mut i = 0;
    while running.load(Ordering::Relaxed) {
        i += 1;
        let (key, id) = (format!("rr-{n}-{}", i % 50), format!("rr{n}_{i}"));
        let mut req = client
            .post(format!("{lb}/api/write"))
            .header("x-shard-key", &key)
            .json(&json!({"table": "users", "id": id, "data": {"n": i}}));
        if n < WRITERS - UNKEYED {
            req = req.header("idempotency-key", format!("rr-{n}-{i}"));
        }
        let at = Instant::now();
        let sent = req.send().await;
        seen.took.push((at, at.elapsed()));
        seen.sent += 1;
        match sent {
            Ok(res) if res.status().is_success() => seen.acked.push((key, id)),
            Ok(res) => {
                let status = res.status();
                let body = res.text().await.unwrap_or_default();
                seen.failures.push(format!("write {id}: {status} {body}"));
            }
            Err(e) => seen.failures.push(format!("write {id}: no answer: {e}")),
        }
    }
    seen
}

async fn reader(client: reqwest::Client, lb: String, running: Arc<AtomicBool>) -> Seen {
    let mut seen = Seen::default();
    while running.load(Ordering::Relaxed) {
        let at = Instant::now();
        let sent = client
            .get(format!("{lb}/api/read?table=users&id=rr-seed"))
            .header("x-shard-key", "rr-seed")
            .send()
            .await;
        seen.took.push((at, at.elapsed()));
        seen.sent += 1;
        match sent {
            Ok(res) if res.status() == 200 => {}
            Ok(res) => seen.failures.push(format!("read: {}", res.status())),
            Err(e) => seen.failures.push(format!("read: no answer: {e}")),
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_of_three_gateways_behind_haproxy_fails_no_request() {
    let _serial = serial().await;
    // The databases, and a gateway outside the load balancer to check with.
    let app = spawn_app_with(|s| {
        // HAProxy's PROXY protocol believed from loopback, as `setup.sh` starts them.
        s.server.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    let seed = json!({"table": "users", "id": "rr-seed", "data": {}});
    assert!(app.write("rr-seed", &seed).await.status().is_success());
    let ports = [low_port(), low_port(), low_port()];
    let mut gateways = Vec::new();
    for port in ports {
        gateways.push(start_gateway(&app.settings, port).await);
    }
    let lb = Haproxy::start(low_port(), &ports);
    for port in ports {
        until_ready(&app.client, port).await;
    }
    // HAProxy's first checks: every gateway in rotation.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let running = Arc::new(AtomicBool::new(true));
    let (client, url) = (app.client.clone(), lb.url.clone());
    let writers: Vec<_> = (0..WRITERS)
        .map(|n| tokio::spawn(writer(client.clone(), url.clone(), n, running.clone())))
        .chain(
            (0..READERS)
                .map(|_| tokio::spawn(reader(client.clone(), url.clone(), running.clone()))),
        )
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut restarts = Vec::new();
    for (i, port) in ports.into_iter().enumerate() {
        let started = Instant::now();
        gateways[i].drain_and_stop().await;
        eprintln!(
            "gateway on {port} drained and stopped in {:?}",
            started.elapsed()
        );
        gateways[i] = start_gateway(&app.settings, port).await;
        until_ready(&app.client, port).await;
        // Back in rotation after HAProxy's next check (every second, one success).
        tokio::time::sleep(Duration::from_secs(2)).await;
        restarts.push((started, Instant::now()));
    }
    running.store(false, Ordering::Relaxed);
    let mut all = Seen::default();
    for task in writers {
        let seen = task.await.unwrap();
        all.sent += seen.sent;
        all.failures.extend(seen.failures);
        all.acked.extend(seen.acked);
        all.took.extend(seen.took);
    }
    // The pause each restart showed a client: its longest request (docs/BENCHMARKS.md).
    let pauses: Vec<Duration> = restarts.iter().map(|r| all.longest_within(*r)).collect();
    eprintln!(
        "rolling restart of 3 gateways: {} of {} requests failed; the longest request during each restart: {pauses:?}",
        all.failures.len(),
        all.sent
    );
    assert!(
        all.failures.is_empty(),
        "{} failed; the first: {:#?}\nhaproxy:\n{}",
        all.failures.len(),
        &all.failures[..all.failures.len().min(10)],
        lb.log()
    );
    let mut wrong = Vec::new();
    for (key, id) in &all.acked {
        let res = app.read_strong(key, "users", id).await;
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let record = &body["record"];
        if status != 200 || record["updated_at"] != record["created_at"] {
            wrong.push(format!("{key}/{id}: {status} {body}"));
        }
    }
    assert_eq!(
        wrong,
        Vec::<String>::new(),
        "acknowledged, not read back written once"
    );
}
