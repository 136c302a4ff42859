//! What a transaction costs next to plain writes (not part of a normal run; figures in
//! docs/BENCHMARKS.md):
//!
//! ```text
//! eval "$(./setup.sh env)"
//! cargo test --release -p api-router --test failures txn_bench -- --ignored --nocapture
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
//!   both (the pairs are located through `GET /api/shards/locate` first).
//!
//! Requests/s, records/s, the gateway's CPU per request (`/proc/PID/stat`) and the
//! non-2xx answers; each of `ROUNDS` rounds runs the three kinds in a rotated order to
//! spread the machine's drift. Run it alone: it takes no lock against the outage tests.

use serde_json::{json, Value};

use crate::wrk::{mean, Bench, Run};

const ROUNDS: usize = 3;
const KINDS: [(&str, f64); 3] = [("write", 1.0), ("txn1", 2.0), ("txn2", 2.0)];
const RUN_SECS: u32 = 8;
const KEYS: usize = 1000;

async fn json_of(req: reqwest::RequestBuilder) -> Value {
    req.send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
#[ignore = "a benchmark: run it alone with --release --ignored --nocapture"]
async fn txn_bench() {
    let bench = Bench::start().await;
    let gateway = &bench.gateway;
    let url = |path: &str| bench.url(path);
    let client = reqwest::Client::new();

    // Where each key lives, then pairs of keys on two shards.
    let mut shard_of = Vec::with_capacity(KEYS);
    for n in 0..KEYS {
        let located = json_of(client.get(url(&format!("/api/shards/locate?key=user_{n}")))).await;
        shard_of.push(located["shard"].as_u64().expect("locate names the shard"));
    }
    let pairs: Vec<(usize, usize)> = (0..KEYS)
        .filter_map(|n| {
            (1..KEYS)
                .map(|step| (n + step * 7) % KEYS)
                .find(|&m| shard_of[m] != shard_of[n])
                .map(|m| (n, m))
        })
        .collect();
    assert_eq!(
        pairs.len(),
        KEYS,
        "every key has a partner on another shard"
    );
    let file = std::env::temp_dir().join(format!("sg-txn-pairs-{}", gateway.port));
    let text: String = pairs.iter().map(|(a, b)| format!("{a} {b}\n")).collect();
    std::fs::write(&file, text).unwrap();
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
    crate::wrk::run(gateway, "write", &env, 2);
    let mut runs: Vec<(&str, Run)> = Vec::new();
    for round in 0..ROUNDS {
        for i in 0..KINDS.len() {
            let (kind, _) = KINDS[(i + round) % KINDS.len()];
            runs.push((kind, crate::wrk::run(gateway, kind, &env, RUN_SECS)));
        }
    }
    let _ = std::fs::remove_file(&file);

    println!("\n| request | requests/s | records/s | gateway CPU per request | non-2xx | runs |");
    println!("|---|---|---|---|---|---|");
    for (kind, records) in KINDS {
        let these: Vec<&Run> = runs
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, r)| r)
            .collect();
        let rps = mean(&these, |r| r.rps);
        let failed: u64 = these.iter().map(|r| r.non_2xx).sum();
        println!(
            "| {kind} | {rps:.0} | {:.0} | {:.0} µs | {failed} | {} |",
            rps * records,
            mean(&these, |r| r.us),
            these.len()
        );
        assert!(rps > 0.0, "{kind}: nothing answered");
        assert_eq!(failed, 0, "{kind}: {failed} answers were not 2xx");
    }
}
