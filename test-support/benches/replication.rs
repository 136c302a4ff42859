//! Benchmark (its figures go to docs/BENCHMARKS.md): what synchronous replication
//! costs. On one private pair, four writers on the request path (a following `Cluster`,
//! as in the failover tests) write single records back to back,
//! `SHARDGATE_BENCH_ROUNDS` (5) times for `SHARDGATE_BENCH_SECS` (5) s in synchronous
//! mode then as long in asynchronous mode (a reload between, the mode checked in
//! `pg_stat_replication`). Printed per round and as medians: writes/s, the median
//! write's latency, and CPU per write (from /proc: the primary's postmaster and its
//! processes, the replica's, and this process, the request path); then sync ÷ async.
//!
//! `eval "$(./setup.sh env)"; cargo bench --profile dev -p test-support --bench replication`
//! (`cargo test --benches` runs nothing).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use test_support::failover::harness::{self, Following, Scratch};
use test_support::failover::workload::{write_before, writes, Tally, Writes};
use test_support::private::pair::{Pair, Replication};

fn main() {
    if !test_support::bench::under_cargo_bench() {
        println!("the replication benchmark runs only under `cargo bench` (docs/BENCHMARKS.md)");
        return;
    }
    test_support::bench::block_on(2, replication_bench_sync_vs_async());
}

/// CPU time used so far, in clock ticks.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    primary: u64,
    replica: u64,
    client: u64,
}

/// (parent pid, utime + stime, cutime + cstime) of a `/proc/<pid>/stat` text.
fn stat_times(text: &str) -> Option<(u32, u64, u64)> {
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    let n = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some((n(1)? as u32, n(11)? + n(12)?, n(13)? + n(14)?))
}

/// A postmaster's CPU: its own, its exited children's, and its live children's.
fn tree_ticks(postmaster: u32) -> u64 {
    let mut ticks = 0;
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let text = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        match stat_times(&text) {
            Some((_, own, children)) if pid == postmaster => ticks += own + children,
            Some((parent, own, _)) if parent == postmaster => ticks += own,
            _ => {}
        }
    }
    ticks
}

fn sample(pair: &Pair) -> Cpu {
    let own = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    Cpu {
        primary: tree_ticks(pair.postmaster_pid("primary")),
        replica: tree_ticks(pair.postmaster_pid("replica")),
        client: stat_times(&own).expect("our own times").1,
    }
}

/// One round's figures.
struct Round {
    per_s: f64,
    p50_ms: f64,
    /// CPU per write in µs: primary, replica, request path.
    cpu_us: [f64; 3],
}

async fn round(pair: &Pair, following: &Following, mode: Replication, n: usize) -> Round {
    pair.set_replication(mode);
    let want = if mode == Replication::Sync {
        "sync"
    } else {
        "async"
    };
    let sql = "SELECT sync_state FROM pg_stat_replication";
    for tries in 0.. {
        let state = pair.query(pair.primary_port, "postgres", sql);
        if state == want {
            break;
        }
        assert!(tries < 40, "the replica is {state:?} in {mode:?} mode");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let secs = harness::bench_setting("SHARDGATE_BENCH_SECS", 5);
    let cluster = &following.cluster;
    let (stop, tally) = (AtomicBool::new(false), Tally::default());
    let how = Writes {
        pause: Duration::ZERO,
        on_replica: false,
    };
    // Ids new to each round: every write inserts.
    let name = |w: &str| -> &'static str { format!("{mode:?}{n}{w}").leak() };
    let (cpu0, started) = (sample(pair), Instant::now());
    let timer = async {
        tokio::time::sleep(Duration::from_secs(secs)).await;
        stop.store(true, Ordering::Relaxed);
        (sample(pair), Instant::now())
    };
    let (_, _, _, _, (cpu1, ended)) = tokio::join!(
        writes(cluster, name("a"), &stop, &tally, how),
        writes(cluster, name("b"), &stop, &tally, how),
        writes(cluster, name("c"), &stop, &tally, how),
        writes(cluster, name("d"), &stop, &tally, how),
        timer
    );
    assert_eq!(tally.failed.load(Ordering::Relaxed), 0, "writes failed");
    let acked = tally.acked.lock().unwrap();
    let mut latencies: Vec<Duration> = acked
        .iter()
        .filter(|a| a.at <= ended)
        .map(|a| a.at - a.sent)
        .collect();
    latencies.sort();
    let count = latencies.len() as f64;
    let tick_us = 1e6 / clock_ticks_per_s();
    let per_write = |a: u64, b: u64| (b - a) as f64 * tick_us / count;
    Round {
        per_s: count / (ended - started).as_secs_f64(),
        p50_ms: latencies[latencies.len() / 2].as_secs_f64() * 1000.0,
        cpu_us: [
            per_write(cpu0.primary, cpu1.primary),
            per_write(cpu0.replica, cpu1.replica),
            per_write(cpu0.client, cpu1.client),
        ],
    }
}

fn clock_ticks_per_s() -> f64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("CLK_TCK")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn show(label: &str, r: &Round) {
    eprintln!(
        "{label}: {:.0} writes/s, p50 {:.2} ms; CPU per write: primary {:.0} µs, replica {:.0} µs, request path {:.0} µs",
        r.per_s, r.p50_ms, r.cpu_us[0], r.cpu_us[1], r.cpu_us[2]
    );
}

/// The median of each figure over `rounds`.
fn medians(rounds: &[Round]) -> Round {
    let of = |f: &dyn Fn(&Round) -> f64| median(rounds.iter().map(f).collect());
    Round {
        per_s: of(&|r| r.per_s),
        p50_ms: of(&|r| r.p50_ms),
        cpu_us: [
            of(&|r| r.cpu_us[0]),
            of(&|r| r.cpu_us[1]),
            of(&|r| r.cpu_us[2]),
        ],
    }
}

async fn replication_bench_sync_vs_async() {
    let rounds = harness::bench_setting("SHARDGATE_BENCH_ROUNDS", 5) as usize;
    let _alone = harness::ONE_AT_A_TIME.lock().await;
    let mut settings = harness::settings();
    let user = settings.database.user.clone();
    let name = settings.database.dbname.clone();
    let pair = Pair::alone(&user, &name, "fo-bench", 26800..26820).with_replica();
    settings.shards[0].primary = pair.primary();
    settings.shards[0].replicas = vec![pair.replica()];
    let _scratch = Scratch(settings.clone());
    let init = harness::seed(&settings, &pair.primary()).await;
    let following = Following::start(&settings, &init);
    write_before(&following.cluster, 20).await;

    let (mut sync, mut not) = (vec![], vec![]);
    for n in 0..rounds {
        let s = round(&pair, &following, Replication::Sync, n).await;
        show(&format!("round {n} sync "), &s);
        let a = round(&pair, &following, Replication::Async, n).await;
        show(&format!("round {n} async"), &a);
        sync.push(s);
        not.push(a);
    }
    let (s, a) = (medians(&sync), medians(&not));
    eprintln!("\nmedians of {rounds} rounds, four writers back to back:");
    show("sync ", &s);
    show("async", &a);
    eprintln!(
        "sync ÷ async: writes/s {:.2}, p50 latency {:.2}, CPU per write: primary {:.2}, replica {:.2}, request path {:.2}",
        s.per_s / a.per_s,
        s.p50_ms / a.p50_ms,
        s.cpu_us[0] / a.cpu_us[0],
        s.cpu_us[1] / a.cpu_us[1],
        s.cpu_us[2] / a.cpu_us[2]
    );
}
