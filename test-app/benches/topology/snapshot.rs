//! What a read at one cut costs (figures in docs/BENCHMARKS.md):
//!
//! ```text
//! eval "$(./setup.sh env)"
//! cargo bench --profile dist -p test-app --bench topology -- snapshot
//! ```
//!
//! One real gateway (the `api-router` binary) over 100 records on three shards:
//!
//! 1. a fan-out list of the 100 records (one page, `where={"bench":"snap"}`), `READS`
//!    times one after another, as
//!    `eventual`, `strong` and `snapshot`: latency p50 and p99;
//! 2. transactions on two shards (`txn2` of `scripts/wrk-cpu.lua`, `wrk -t1 -c8`, over
//!    1,000 keys) for `RUN_SECS`: alone, with 2 readers looping eventual fan-out lists,
//!    and with 2 readers looping snapshot fan-out lists: transactions/s, and, from the
//!    snapshot answers, how long the fence held decisions back (`fence_us`, p50 and
//!    p99). `ROUNDS` rounds, in rotated order, each run after a 2 s look at how idle
//!    the machine's CPUs are (from `/proc/stat`), printed with it;
//! 3. each step of a snapshot read (the gateway's `snapshot phases` debug lines: the
//!    fence taken, the lists and snapshots, the log's answer, the release, the reads),
//!    p50 and p99, idle and under the transactions;
//! 4. what serving a snapshot from replicas would add under the fence: each shard's
//!    primary position read, then its replica polled until it has replayed that far,
//!    idle and under the transactions alone (a run of its own).
//!
//! Run it alone: it takes no lock against the outage tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{json, Value};
use test_app::wrk::Bench;

use crate::key_pairs;

const ROUNDS: usize = 3;
const RUN_SECS: u32 = 8;
const KEYS: usize = 1000;
const READS: usize = 300;
const READERS: usize = 2;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

/// The share of the machine's CPU time idle over the next 2 s (`/proc/stat`), in %.
fn idle_percent() -> f64 {
    let read = || -> Vec<u64> {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        stat.lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect()
    };
    let before = read();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let after = read();
    let delta: Vec<u64> = after
        .iter()
        .zip(&before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let total: u64 = delta.iter().sum();
    // idle and iowait
    let idle = delta.get(3).copied().unwrap_or(0) + delta.get(4).copied().unwrap_or(0);
    100.0 * idle as f64 / total.max(1) as f64
}

/// One fan-out list; its latency in ms and, for a snapshot, the fence's hold in µs.
async fn fan_out(client: &reqwest::Client, base: &str, consistency: &str) -> (f64, Option<f64>) {
    let started = Instant::now();
    let res = client
        .get(format!(
            "{base}/api/read?table=users&limit=1000&where=%7B%22bench%22%3A%22snap%22%7D&consistency={consistency}"
        ))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{consistency}: {body}");
    let took = started.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(body["count"], 100);
    (took, body["snapshot"]["fence_us"].as_f64())
}

/// Readers looping fan-out lists on a thread of their own until `stop`: the lists
/// answered and the fence holds seen.
fn readers(
    base: String,
    consistency: &'static str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(usize, Vec<f64>)> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let fences = Arc::new(Mutex::new(Vec::new()));
            let done = Arc::new(Mutex::new(0usize));
            let tasks: Vec<_> = (0..READERS)
                .map(|_| {
                    let (base, stop, fences, done) =
                        (base.clone(), stop.clone(), fences.clone(), done.clone());
                    tokio::spawn(async move {
                        let client = reqwest::Client::new();
                        while !stop.load(Ordering::Relaxed) {
                            let (_, fence) = fan_out(&client, &base, consistency).await;
                            *done.lock().unwrap() += 1;
                            if let Some(f) = fence {
                                fences.lock().unwrap().push(f);
                            }
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            let fences = fences.lock().unwrap().clone();
            let done = *done.lock().unwrap();
            (done, fences)
        })
    })
}

/// The benchmark. Its runtime has two worker threads (`main`'s table says so): the
/// gateway's output is read by a task of this runtime while the benchmark blocks on wrk
/// and on the readers' threads, and the gateway logs every snapshot read's phases (a
/// pipe left unread would stop it at its next line).
pub async fn run() {
    let bench = Bench::start_with(&[(
        "RUST_LOG",
        "warn,api_router::startup=info,shard_manager::cluster::snapshot=debug",
    )])
    .await;
    let base = bench.url("");
    let client = reqwest::Client::new();
    let records: Vec<Value> = (0..100)
        .map(|n| json!({"shard_key": format!("list_{n}"), "id": format!("list_{n}"), "data": {"n": n, "bench": "snap"}}))
        .collect();
    let res = client
        .post(bench.url("/api/bulk-write"))
        .json(&json!({"table": "users", "records": records}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // 1. A fan-out's latency by consistency, rotated.
    println!("CPU idle before the fan-outs: {:.0}%", idle_percent());
    let kinds = ["eventual", "strong", "snapshot"];
    let mut latency: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    let mut fence_idle = Vec::new();
    for _ in 0..10 {
        fan_out(&client, &base, "eventual").await;
    }
    for round in 0..ROUNDS {
        for i in 0..kinds.len() {
            let k = (i + round) % kinds.len();
            for _ in 0..READS / ROUNDS {
                let (ms, fence) = fan_out(&client, &base, kinds[k]).await;
                latency[k].push(ms);
                fence_idle.extend(fence);
            }
        }
    }

    let idle_phases = phases(&bench.gateway.output());
    let stop = Arc::new(AtomicBool::new(false));
    let probe = replay_probe(bench.settings.clone(), stop.clone());
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let idle_probe = probe.join().unwrap();

    // 2. Transactions on two shards, without and with readers.
    let (_, file) = key_pairs::write(&bench, KEYS, "snapshot").await;
    let pairs_path = file.to_string_lossy().into_owned();
    let keys = KEYS.to_string();
    let env = [("KEYS", keys.as_str()), ("PAIRS", pairs_path.as_str())];
    test_app::wrk::run(&bench.gateway, "txn2", &env, 2);

    let modes: [Option<&'static str>; 3] = [None, Some("eventual"), Some("snapshot")];
    let mut tps: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    let mut lists: Vec<f64> = vec![0.0; modes.len()];
    let mut fences = Vec::new();
    for round in 0..ROUNDS {
        for i in 0..modes.len() {
            let m = (i + round) % modes.len();
            let idle = idle_percent();
            let stop = Arc::new(AtomicBool::new(false));
            let reading = modes[m].map(|c| readers(base.clone(), c, stop.clone()));
            let run = test_app::wrk::run(&bench.gateway, "txn2", &env, RUN_SECS);
            stop.store(true, Ordering::Relaxed);
            if let Some(r) = reading {
                let (done, seen) = r.join().unwrap();
                lists[m] += done as f64 / f64::from(RUN_SECS + 1) / ROUNDS as f64;
                fences.extend(seen);
            }
            assert!(run.rps > 0.0);
            println!(
                "round {round}, {}: {:.0} transactions/s (CPU idle before: {idle:.0}%)",
                modes[m].unwrap_or("alone"),
                run.rps
            );
            tps[m].push(run.rps);
        }
    }
    // 3. How far behind its primary each replica is under the transactions alone (a
    // run of its own, not counted above).
    let stop = Arc::new(AtomicBool::new(false));
    let probe = replay_probe(bench.settings.clone(), stop.clone());
    test_app::wrk::run(&bench.gateway, "txn2", &env, RUN_SECS);
    stop.store(true, Ordering::Relaxed);
    let loaded_probe = probe.join().unwrap();
    let _ = std::fs::remove_file(&file);

    println!("\n| fan-out of 100 records over 3 shards | p50 | p99 | lists |");
    println!("|---|---|---|---|");
    for (k, kind) in kinds.iter().enumerate() {
        let s = sorted(latency[k].clone());
        println!(
            "| {kind} | {:.2} ms | {:.2} ms | {} |",
            percentile(&s, 0.5),
            percentile(&s, 0.99),
            s.len()
        );
    }
    let idle = sorted(fence_idle);
    println!(
        "\nfence held, idle: p50 {:.0} µs, p99 {:.0} µs ({} cuts)",
        percentile(&idle, 0.5),
        percentile(&idle, 0.99),
        idle.len()
    );
    println!(
        "\n| transactions on two shards (wrk -c8) | transactions/s | vs alone | reader lists/s |"
    );
    println!("|---|---|---|---|");
    let alone = tps[0].iter().sum::<f64>() / tps[0].len() as f64;
    for (m, mode) in modes.iter().enumerate() {
        let mean = tps[m].iter().sum::<f64>() / tps[m].len() as f64;
        println!(
            "| {} | {mean:.0} ({}) | {:.2} | {:.1} |",
            mode.map_or("alone".to_owned(), |c| format!(
                "with 2 {c} fan-out readers"
            )),
            tps[m]
                .iter()
                .map(|t| format!("{t:.0}"))
                .collect::<Vec<_>>()
                .join(", "),
            mean / alone,
            lists[m]
        );
    }
    let loaded = sorted(fences);
    println!(
        "\nfence held under the transactions: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs ({} cuts)",
        percentile(&loaded, 0.5),
        percentile(&loaded, 0.99),
        loaded.last().copied().unwrap_or(0.0),
        loaded.len()
    );
    assert!(!loaded.is_empty(), "no snapshot was read under load");
    let all_phases = phases(&bench.gateway.output());
    let loaded_phases: Vec<Vec<(String, f64)>> = all_phases[idle_phases.len()..].to_vec();
    print_phases("idle (the snapshot fan-outs above)", &idle_phases);
    print_phases("under the transactions", &loaded_phases);
    println!();
    print_probe("idle", &idle_probe);
    print_probe("under the transactions alone", &loaded_probe);
}

/// What a snapshot served by replicas would add under the fence, shard by shard: the
/// primary's WAL position read (a round trip), then the replica polled (a round trip
/// each, no sleep) until it has replayed that far. Samples (position read, replica
/// caught up) in µs, over every shard, until `stop`.
fn replay_probe(
    settings: shard_manager::ClusterSettings,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<(f64, f64)>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let connect = async |addr: &str| {
                let url = shard_manager::servers::connection_url(&settings.database, addr);
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .expect("a direct connection");
                tokio::spawn(conn);
                let standby: bool = client
                    .query_one("SELECT pg_is_in_recovery()", &[])
                    .await
                    .unwrap()
                    .get(0);
                (client, standby)
            };
            // Each shard's servers as they are now (a failover may have swapped them).
            let mut pairs = Vec::new();
            for shard in &settings.shards {
                let mut primary = None;
                let mut replica = None;
                for addr in std::iter::once(&shard.primary).chain(&shard.replicas) {
                    match connect(addr).await {
                        (c, false) => primary = Some(c),
                        (c, true) => replica = Some(c),
                    }
                }
                if let (Some(p), Some(r)) = (primary, replica) {
                    pairs.push((p, r));
                }
            }
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                for (primary, replica) in &pairs {
                    let began = Instant::now();
                    let lsn: String = primary
                        .query_one("SELECT pg_current_wal_lsn()::text", &[])
                        .await
                        .unwrap()
                        .get(0);
                    let read = began.elapsed();
                    loop {
                        let caught_up: bool = replica
                            .query_one(
                                "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false)",
                                &[&lsn],
                            )
                            .await
                            .unwrap()
                            .get(0);
                        if caught_up || began.elapsed().as_secs() >= 1 {
                            break;
                        }
                    }
                    samples.push((
                        read.as_secs_f64() * 1e6,
                        began.elapsed().as_secs_f64() * 1e6,
                    ));
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            samples
        })
    })
}

fn print_probe(what: &str, samples: &[(f64, f64)]) {
    let read = sorted(samples.iter().map(|s| s.0).collect());
    let total = sorted(samples.iter().map(|s| s.1).collect());
    println!(
        "replica caught up with its primary's position, {what} ({} samples): position read p50 {:.2} ms, p99 {:.2} ms; replica caught up p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        samples.len(),
        percentile(&read, 0.5) / 1000.0,
        percentile(&read, 0.99) / 1000.0,
        percentile(&total, 0.5) / 1000.0,
        percentile(&total, 0.99) / 1000.0,
        total.last().copied().unwrap_or(0.0) / 1000.0,
    );
}

/// The gateway's `snapshot phases` lines (debug), each as its `*_us` fields in order.
fn phases(output: &str) -> Vec<Vec<(String, f64)>> {
    output
        .lines()
        .filter(|l| l.contains("snapshot phases"))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|field| {
                    let (name, value) = field.split_once('=')?;
                    let name = name.strip_suffix("_us")?;
                    Some((name.to_owned(), value.parse().ok()?))
                })
                .collect()
        })
        .collect()
}

/// Each phase's p50 and p99 in ms over `lines`.
fn print_phases(what: &str, lines: &[Vec<(String, f64)>]) {
    println!(
        "\nphases of a snapshot read, {what} ({} reads):",
        lines.len()
    );
    let Some(first) = lines.first() else {
        println!("(none logged: a gateway built before the phases were)");
        return;
    };
    println!("| phase | p50 | p99 |");
    println!("|---|---|---|");
    for (i, (name, _)) in first.iter().enumerate() {
        let v = sorted(lines.iter().filter_map(|l| l.get(i).map(|f| f.1)).collect());
        println!(
            "| {name} | {:.2} ms | {:.2} ms |",
            percentile(&v, 0.5) / 1000.0,
            percentile(&v, 0.99) / 1000.0
        );
    }
}
