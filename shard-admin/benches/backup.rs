//! Benchmark (its figures go to docs/BENCHMARKS.md): the cluster restore point's fence
//! under load, on private servers with real pgBackRest (test-support's `backup`, the
//! servers, CLI and load the backup tests use), never the shared topology. Two shards
//! and a metadata server; four writers and two transferers (two-phase commits whose
//! decision goes through the coordinator log) run while `shard-admin backup --type
//! full` takes the cluster's backup and then `SHARDGATE_BENCH_ROUNDS` (20) more points
//! are named; then every data directory is deleted and `restore --point` brings the
//! three servers back to the backup's point. Printed: the backup's and the restore's
//! time, the points' fence (the only pause a point causes: decision writes wait), p50
//! and max, and the decision writes' p50 and max.
//!
//! `eval "$(./setup.sh env)"; cargo bench --profile dev -p shard-admin --bench backup`
//! (`cargo test --benches` runs nothing; without pgbackrest it says so and measures nothing).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use control_plane::backup::{point, stanza};
use control_plane::txn::MetaLog;
use test_support::backup::load_cluster::{Load, LoadCluster};
use test_support::backup::server;
use test_support::bench::under_cargo_bench;

fn main() {
    if !under_cargo_bench() || !server::pgbackrest_present() {
        return;
    }
    let rounds: usize = std::env::var("SHARDGATE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let up = LoadCluster::start(env!("CARGO_BIN_EXE_shard-admin"));
    let (cluster, cli, settings, pm) = (&up.servers, &up.cli, &up.settings, up.meta);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let log = Arc::new(MetaLog::new(settings.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let Load {
        writers,
        transferers,
    } = up.start_load(&rt, log, stop.clone());
    std::thread::sleep(Duration::from_millis(500));

    let started = Instant::now();
    let out = cli.run(&["backup", "--type", "full"], &[]);
    let backup = started.elapsed();
    assert!(
        out.status.success(),
        "backup: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let fences: Vec<u64> = rt.block_on(async {
        let mut conn = control_plane::map::meta::connect(settings)
            .await
            .expect("the metadata database");
        let map = control_plane::map::meta::load(&mut conn.client)
            .await
            .expect("the stored map")
            .expect("a seeded map");
        let targets = stanza::targets(&map, &settings.metadata.address);
        let all = point::connect_all(settings, &targets)
            .await
            .expect("every server");
        let mut fences = Vec::new();
        for i in 0..rounds {
            let p = all.create(&format!("sg_bench_{i}")).await.expect("a point");
            fences.push(p.fence_ms);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        fences
    });
    stop.store(true, Ordering::Relaxed);
    let writes: usize = writers
        .into_iter()
        .map(|h| rt.block_on(h).expect("a writer").len())
        .sum();
    let settles: Vec<u64> = transferers
        .into_iter()
        .flat_map(|h| rt.block_on(h).expect("a transferer"))
        .map(|t| t.settle.as_micros() as u64)
        .collect();
    let transfers = settles.len();
    let (f50, fmax) = p50_max(fences);
    let (s50, smax) = p50_max(settles);

    // The cluster destroyed (every data directory deleted), then restored from the
    // repository alone to the backup's point.
    let first = cluster.query_on(
        pm,
        "shardgate_meta",
        "SELECT name FROM restore_points ORDER BY created_at LIMIT 1",
    );
    for stanza in ["shard0", "shard1", "meta"] {
        cluster.stop(stanza);
        std::fs::remove_dir_all(cluster.dir.join(stanza)).expect("delete a data directory");
    }
    let started = Instant::now();
    let out = cli.run(&["restore", "--point", &first, "--yes", "--force"], &[]);
    let restore = started.elapsed();
    assert!(
        out.status.success(),
        "restore: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    println!(
        "shard-admin backup --type full under load: {:.1} s",
        backup.as_secs_f64()
    );
    println!(
        "shard-admin restore --point of three servers, data directories deleted: {:.1} s",
        restore.as_secs_f64()
    );
    println!(
        "{rounds} points under load: fence p50 {f50} ms, max {fmax} ms; decision writes \
         ({transfers} transfers) p50 {s50} us, max {smax} us; {writes} single-shard writes"
    );
}

fn p50_max(mut v: Vec<u64>) -> (u64, u64) {
    v.sort_unstable();
    (
        v.get(v.len() / 2).copied().unwrap_or(0),
        v.last().copied().unwrap_or(0),
    )
}
