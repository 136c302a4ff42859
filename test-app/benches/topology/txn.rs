//! What a transaction costs next to plain writes (not part of a normal run; figures in
//! docs/BENCHMARKS.md):
//!
//! ```text
//! eval "$(./setup.sh env)"
//! cargo bench -p test-app --bench topology -- txn
//! ```
//!
//! One real gateway (the `api-router` binary) under `wrk -t1 -c8 -d8s -s
//! scripts/wrk-cpu.lua`, three kinds of request over 1,000 keys:
//!
//! - `write`: one upsert (`POST /api/write`), the baseline;
//! - `txn1`: a transaction of two upserts under one shard key: one shard, one round
//!   (`BEGIN ... COMMIT`), no coordinator log;
//! - `txn2`: a transaction of two upserts whose keys live on two shards: `PREPARE
//!   TRANSACTION` on both, the decision in the metadata database, `COMMIT PREPARED` on
//!   both (the pairs are located through `GET /api/shards/locate` first);
//! - `pair2`: the same two upserts as one bulk write without atomicity (a part per
//!   shard, each committed on its own): what `txn2` is measured against.
//!
//! Requests/s, records/s, latency p50/p99, CPU per request of the gateway
//! (`/proc/PID/stat`), of the shard primaries and of the metadata server (each
//! postmaster with its children), and the non-2xx answers; each of `ROUNDS` rounds runs
//! the kinds in a rotated order to spread the machine's drift. Run it alone: it takes
//! no lock against the outage tests.

use serde_json::json;
use test_app::json_of;
use test_app::wrk::{mean, Bench, Run};

use crate::key_pairs;

const ROUNDS: usize = 3;
const KINDS: [(&str, f64); 4] = [("write", 1.0), ("txn1", 2.0), ("pair2", 2.0), ("txn2", 2.0)];
/// The servers whose CPU is measured: the shard primaries, the metadata server.
const WATCH: [&[&str]; 2] = [
    &["shard0-primary", "shard1-primary", "shard2-primary"],
    &["meta"],
];
const RUN_SECS: u32 = 8;
const KEYS: usize = 1000;

/// How many requests the gateway has answered with a client error (4xx) so far, from
/// its `/metrics`: under this load only `409 concurrent-conflict`, two transactions on
/// two shards that each prepared one part and wait for the other's (each part waits at
/// most `database.txn_lock_timeout_ms`, then the transaction is rolled back
/// everywhere).
async fn client_errors(url: &str) -> u64 {
    // A fresh connection each time: the gateway closes idle ones (keep-alive) while wrk runs.
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("shardgate_http_requests_total{") && l.contains("outcome=\"client\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

pub async fn run() {
    let bench = Bench::start().await;
    let gateway = &bench.gateway;
    let url = |path: &str| bench.url(path);
    let client = reqwest::Client::new();

    // Where each key lives, then pairs of keys on two shards.
    let (pairs, file) = key_pairs::write(&bench, KEYS, "txn").await;
    assert_eq!(
        pairs.len(),
        KEYS,
        "every key has a partner on another shard"
    );
    let pairs_path = file.to_string_lossy().into_owned();

    // One two-shard transaction through the gateway first: it is what is measured.
    let (a, b) = pairs[0];
    let first = json_of(client.post(url("/api/transaction")).json(&json!({"operations": [
        {"table": "users", "shard_key": format!("user_{a}"), "id": format!("rec_{a}"), "data": {"n": a}},
        {"table": "users", "shard_key": format!("user_{b}"), "id": format!("rec_{b}"), "data": {"n": b}}]})))
    .await;
    assert_eq!(first["protocol"], "two-phase", "{first}");

    let keys = KEYS.to_string();
    let env = [("KEYS", keys.as_str()), ("PAIRS", pairs_path.as_str())];
    test_app::wrk::run(gateway, "write", &env, 2);
    let mut runs: Vec<(&str, Run, u64)> = Vec::new();
    for round in 0..ROUNDS {
        for i in 0..KINDS.len() {
            let (kind, _) = KINDS[(i + round) % KINDS.len()];
            let before = client_errors(&url("/metrics")).await;
            let run = test_app::wrk::run_watching(gateway, kind, &env, RUN_SECS, &WATCH);
            let conflicts = client_errors(&url("/metrics")).await - before;
            runs.push((kind, run, conflicts));
        }
    }
    let _ = std::fs::remove_file(&file);

    println!("\n| request | requests/s | records/s | p50 | p99 | CPU per request: gateway | shard primaries | metadata | 409 conflicts | other non-2xx | runs |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (kind, records) in KINDS {
        let these: Vec<&Run> = runs
            .iter()
            .filter(|(k, _, _)| *k == kind)
            .map(|(_, r, _)| r)
            .collect();
        let rps = mean(&these, |r| r.rps);
        let non_2xx: u64 = these.iter().map(|r| r.non_2xx).sum();
        let conflicts: u64 = runs
            .iter()
            .filter(|(k, _, _)| *k == kind)
            .map(|(_, _, c)| c)
            .sum();
        let failed = non_2xx.saturating_sub(conflicts);
        println!(
            "| {kind} | {rps:.0} | {:.0} | {:.2} ms | {:.2} ms | {:.0} µs | {:.0} µs | {:.0} µs | {conflicts} | {failed} | {} |",
            rps * records,
            mean(&these, |r| r.p50_ms),
            mean(&these, |r| r.p99_ms),
            mean(&these, |r| r.us),
            mean(&these, |r| r.servers_us[0]),
            mean(&these, |r| r.servers_us[1]),
            these.len()
        );
        assert!(rps > 0.0, "{kind}: nothing answered");
        assert_eq!(
            failed, 0,
            "{kind}: {failed} answers were neither 2xx nor 409"
        );
    }
}
