//! The planned operations benchmark (not part of a normal run; figures in
//! docs/BENCHMARKS.md, "Planned operations"):
//!
//! ```text
//! eval "$(./setup.sh env)"
//! cargo bench -p test-app --bench topology -- planned
//! ```
//!
//! Eight writers keep writing records on keys of every shard through the gateway, half of
//! them with an `Idempotency-Key` of their own, half without (the gateway keys those),
//! never retrying, while `ROUNDS` times shard 1's primary is switched over to its replica
//! and back and 16 slots move from shard 0 to shard 2 and back. For each kind of
//! operation: the longest write that overlapped it (the pause a client saw), p50/p99/max
//! over the operations; the writes answered other than 2xx; and what a held write cost:
//! the time held per request (the gateway's own `shardgate_requests_held_*`) and the
//! latency of the writes that overlapped an operation against those before the first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use control_plane::failover::switchover::switchover;
use serde_json::json;
use shard_manager::ShardId;
use test_app::{move_slots, spawn_app, TestApp};
use test_support::outage::serial;

const WRITERS: usize = 8;
const KEYS: usize = 3_000;

/// One answered write: when it was sent, how long it took, and its status.
type Answer = (Instant, f64, u16);

fn rounds() -> usize {
    std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

fn writer(
    app: &TestApp,
    w: usize,
    log: Arc<Mutex<Vec<Answer>>>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    let (client, url) = (app.client.clone(), app.url("/api/write"));
    tokio::spawn(async move {
        let mut n = 0usize;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let key = format!("pl-{}", (n * WRITERS + w) % KEYS);
            let mut req = client
                .post(&url)
                .header("x-shard-key", &key)
                .json(&json!({"table": "users", "id": format!("w{w}-{n}"), "data": {"n": n}}));
            if w.is_multiple_of(2) {
                req = req.header(
                    "idempotency-key",
                    format!("planned-{w}-{n}-{}", std::process::id()),
                );
            }
            let sent = Instant::now();
            let status = match req.send().await {
                Ok(res) => res.status().as_u16(),
                Err(_) => 0,
            };
            let ms = sent.elapsed().as_secs_f64() * 1000.0;
            log.lock().unwrap().push((sent, ms, status));
        }
    })
}

/// The longest write that overlapped each window, and every write that did.
fn overlapping(log: &[Answer], windows: &[(Instant, Instant)]) -> (Vec<f64>, Vec<f64>) {
    let mut longest = Vec::new();
    let mut during = Vec::new();
    for (from, to) in windows {
        let inside: Vec<f64> = log
            .iter()
            .filter(|(sent, ms, _)| {
                *sent <= *to && *sent + Duration::from_secs_f64(ms / 1000.0) >= *from
            })
            .map(|(_, ms, _)| *ms)
            .collect();
        longest.push(inside.iter().cloned().fold(0.0, f64::max));
        during.extend(inside);
    }
    (sorted(longest), sorted(during))
}

pub async fn run() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let settings = app.settings.cluster.clone();
    assert!(
        settings.failover.ha_monitor.is_some(),
        "the topology runs no HA manager (HA=0): nothing to switch over"
    );
    let (primary, replica) = (settings.shards[1].primary.clone(), app.replica(1));
    let log: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| writer(&app, w, log.clone(), stop.clone()))
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let quiet_end = Instant::now();
    let (held0, secs0) = (
        app.metric("shardgate_requests_held_total", "released")
            .await,
        app.metric("shardgate_requests_held_seconds_total", "")
            .await,
    );
    let (mut switchovers, mut moves) = (Vec::new(), Vec::new());
    for round in 0..rounds() {
        for to in [&replica, &primary] {
            let started = Instant::now();
            let done = switchover(&settings, ShardId(1), Some(to), "bench", |_| {})
                .await
                .unwrap_or_else(|e| panic!("the switchover to {to}: {e}"));
            switchovers.push((started, Instant::now()));
            eprintln!(
                "round {round}: switchover {} -> {}: writes waited {:?}",
                done.from, done.to, done.paused
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        for (from, to) in [(0, 2), (2, 0)] {
            let started = Instant::now();
            let done = move_slots(&settings, from, to, 16).await;
            moves.push((started, Instant::now()));
            eprintln!(
                "round {round}: move {from} -> {to}: fence {:?} ms",
                done.fence_ms
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    let (held1, secs1) = (
        app.metric("shardgate_requests_held_total", "released")
            .await,
        app.metric("shardgate_requests_held_seconds_total", "")
            .await,
    );
    let refused = app
        .metric("shardgate_requests_held_total", "refused_at_bound")
        .await
        + app
            .metric("shardgate_requests_held_total", "timed_out")
            .await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let log = log.lock().unwrap();
    let failed = log
        .iter()
        .filter(|(_, _, s)| !(200..300).contains(s))
        .count();
    let quiet = sorted(
        log.iter()
            .filter(|(t, _, _)| *t < quiet_end)
            .map(|(_, ms, _)| *ms)
            .collect(),
    );
    eprintln!(
        "{} writes, {failed} answered other than 2xx; quiet writes p50 {:.2} ms, p99 {:.2} ms ({})",
        log.len(),
        pct(&quiet, 0.5),
        pct(&quiet, 0.99),
        quiet.len()
    );
    for (name, windows) in [("switchover", &switchovers), ("16-slot move", &moves)] {
        let (longest, during) = overlapping(&log, windows);
        eprintln!(
            "{name} ({} of them): longest write overlapping each, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; writes overlapping: p50 {:.2} ms, p99 {:.1} ms ({})",
            windows.len(),
            pct(&longest, 0.5),
            pct(&longest, 0.99),
            pct(&longest, 1.0),
            pct(&during, 0.5),
            pct(&during, 0.99),
            during.len()
        );
    }
    let held = held1 - held0;
    eprintln!(
        "held and released: {held} requests, {:.1} ms held each on average; {refused} timed out or refused at the bound",
        if held > 0.0 { (secs1 - secs0) / held * 1000.0 } else { 0.0 }
    );
}
