//! Benchmark (its figures go to docs/BENCHMARKS.md): on a private pg_auto_failover
//! formation under two writers, `SHARDGATE_BENCH_ROUNDS` (10) losses of the primary's
//! whole machine (`kill -9` of its keeper and PostgreSQL; the old node started again
//! and rejoined before the next round), then as many planned switchovers. Printed: per
//! failover, kill → promotion (the HA manager's detection and promotion), kill → the
//! map's term raised (the gateway following), kill → first acknowledged write; per
//! switchover, the drain-to-promotion pause and the longest gap between acknowledged
//! writes a client saw; p50 and max of each.
//!
//! `eval "$(./setup.sh env)"; cargo bench --profile dev -p test-support --bench outage`
//! (`cargo test --benches` runs nothing).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use control_plane::failover::switchover::switchover;
use shard_manager::ShardId;
use test_support::failover::workload::{write_before, writer, Tally};
use test_support::failover::{ha_shard, harness};
use test_support::private::autoctl::Formation;

fn main() {
    if !test_support::bench::under_cargo_bench() {
        println!("the outage benchmark runs only under `cargo bench` (docs/BENCHMARKS.md)");
        return;
    }
    test_support::bench::block_on(2, outage_after_kill_and_switchover_pause());
}

fn p50_max(mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "p50 {:.0} ms, max {:.0} ms",
        ms(v[v.len() / 2]),
        ms(v[v.len() - 1])
    )
}

/// Whether node `node` is in recovery, None when it does not answer.
fn in_recovery(formation: &Formation, node: usize) -> Option<bool> {
    let asked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        formation.query(node, "postgres", "SELECT pg_is_in_recovery()")
    }));
    asked.ok().map(|t| t == "t")
}

async fn outage_after_kill_and_switchover_pause() {
    let rounds = harness::bench_setting("SHARDGATE_BENCH_ROUNDS", 10) as usize;
    let shard = ha_shard::start("the benchmark")
        .await
        .expect("pg_autoctl installed");
    let (formation, settings, following) = (&shard.formation, &shard.settings, &shard.following);
    let cluster = following.cluster.clone();
    write_before(&cluster, 5).await;

    let stop = AtomicBool::new(false);
    let tally = Tally::default();
    let drive = async {
        let (mut promoted, mut followed, mut first) = (vec![], vec![], vec![]);
        let (mut paused, mut gaps) = (vec![], vec![]);
        for round in 0..rounds {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let p =
                usize::from(cluster.shard(ShardId(0)).unwrap().primary.addr != formation.addr(0));
            let term = cluster.map().term(0);
            let killed = Instant::now();
            let f = formation.clone();
            tokio::task::spawn_blocking(move || f.kill_node(p))
                .await
                .unwrap();
            let mut seen = (None, None, None);
            while seen.0.is_none() || seen.1.is_none() || seen.2.is_none() {
                if seen.0.is_none() && in_recovery(formation, 1 - p) == Some(false) {
                    seen.0 = Some(killed.elapsed());
                }
                if seen.1.is_none() && cluster.map().term(0) > term {
                    seen.1 = Some(killed.elapsed());
                }
                // A write acknowledged by the new primary (one answered just after
                // the kill may have committed on the old one just before it).
                if let (Some(promoted), None) = (seen.0, seen.2) {
                    seen.2 = tally.first_ack_after(killed + promoted).map(|t| t - killed);
                }
                assert!(
                    killed.elapsed() < Duration::from_secs(90),
                    "round {round}: {seen:?}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            eprintln!(
                "failover {round}: promoted {:?}, map followed {:?}, first write {:?}",
                seen.0.unwrap(),
                seen.1.unwrap(),
                seen.2.unwrap()
            );
            promoted.push(seen.0.unwrap());
            followed.push(seen.1.unwrap());
            first.push(seen.2.unwrap());
            let f = formation.clone();
            tokio::task::spawn_blocking(move || {
                f.restart_node(p);
                let mut want = ["primary", "primary"];
                want[p] = "secondary";
                f.wait_states(&want, Duration::from_secs(120));
            })
            .await
            .unwrap();
        }
        for round in 0..rounds {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let start = Instant::now();
            let done = switchover(settings, ShardId(0), None, "bench@switchover", |_| {})
                .await
                .expect("a switchover");
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut acks: Vec<Instant> = tally
                .acked
                .lock()
                .unwrap()
                .iter()
                .map(|a| a.at)
                .filter(|t| *t >= start)
                .collect();
            acks.sort();
            let gap = std::iter::once(start)
                .chain(acks)
                .collect::<Vec<_>>()
                .windows(2)
                .map(|w| w[1] - w[0])
                .max()
                .unwrap_or_default();
            eprintln!(
                "switchover {round}: paused {:?}, longest gap {gap:?}",
                done.paused
            );
            paused.push(done.paused);
            gaps.push(gap);
            let f = formation.clone();
            let p = usize::from(done.from != formation.addr(0));
            tokio::task::spawn_blocking(move || {
                let mut want = ["primary", "primary"];
                want[p] = "secondary";
                f.wait_states(&want, Duration::from_secs(120));
            })
            .await
            .unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        eprintln!("\n{rounds} failovers (kill -9 of the primary's machine):");
        eprintln!("  kill -> promotion:             {}", p50_max(promoted));
        eprintln!("  kill -> map followed:          {}", p50_max(followed));
        eprintln!("  kill -> first acknowledged:    {}", p50_max(first));
        eprintln!("{rounds} switchovers:");
        eprintln!("  drain -> new primary writable: {}", p50_max(paused));
        eprintln!("  longest client-seen gap:       {}", p50_max(gaps));
    };
    tokio::join!(
        writer(&cluster, "a", &stop, &tally),
        writer(&cluster, "b", &stop, &tally),
        drive
    );
    eprintln!(
        "writes failed (in flight at a kill): {}",
        tally.failed.load(Ordering::Relaxed)
    );
}
