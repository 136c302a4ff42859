//! Benchmark (its figures go to docs/BENCHMARKS.md): what a shard in asynchronous mode
//! loses when its primary dies. On a private pair (`Replication::Async`), four writers
//! on the request path (two single, one bulk, one that waits for a replica as
//! `x-durability: replica` does) run while the primary's postmaster is killed (-9) and
//! its replica promoted by hand a second later; then what the promoted replica holds is
//! counted. `SHARDGATE_BENCH_ROUNDS` (1) times each: with a healthy replica, and with one
//! that stopped receiving 400 ms before the kill. Printed per run: single writes
//! acknowledged and lost (and when the first and last lost one were acknowledged,
//! against the kill), applied twice, bulk records acknowledged and lost, writes
//! acknowledged on a replica and lost. The promises themselves are the failover suite's
//! (`control-plane/tests/failover/async_loss.rs`).
//!
//! `eval "$(./setup.sh env)"; cargo bench --profile dev -p test-support --bench async_loss`
//! (`cargo test --benches` runs nothing).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use test_support::failover::harness::{self, OnPair};
use test_support::failover::workload::{
    bulk_writer, count_sql, lost_and_twice, parse_versions, reader, stored_versions_sql,
    write_before, writer, writes, Acked, Tally, Writes,
};
use test_support::private::pair::Replication;

/// How far behind the lagging replica is when its primary dies.
const LAG: Duration = Duration::from_millis(400);

fn main() {
    if !test_support::bench::under_cargo_bench() {
        println!("the async_loss benchmark runs only under `cargo bench` (docs/BENCHMARKS.md)");
        return;
    }
    test_support::bench::block_on(2, async {
        let rounds = harness::bench_setting("SHARDGATE_BENCH_ROUNDS", 1);
        for _ in 0..rounds {
            println!("{}", loss_in_async_mode(None).await);
            println!("{}", loss_in_async_mode(Some(LAG)).await);
        }
    });
}

/// One failover under load, `lag` after the replica stopped receiving (None: a healthy
/// replica); its figures on one line.
async fn loss_in_async_mode(lag: Option<Duration>) -> String {
    let up = OnPair::start("bench-async", 26820..26850, Replication::Async).await;
    let (pair, settings, following) = (&up.pair, &up.settings, &up.following);
    let name = settings.database.dbname.clone();
    let cluster = following.cluster.clone();

    let before = write_before(&cluster, 20).await;
    let before_ids: Vec<String> = before.iter().map(|a| a.id.clone()).collect();
    let stop = AtomicBool::new(false);
    let (tally, durable) = (Tally::default(), Tally::default());
    let on_replica = Writes {
        on_replica: true,
        ..Writes::PACED
    };
    let failure = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        if let Some(lag) = lag {
            let p = pair.clone();
            tokio::task::spawn_blocking(move || p.stop_replica_receiving())
                .await
                .expect("stop the replica receiving");
            tokio::time::sleep(lag).await;
        }
        let done = harness::fail_over(pair, &cluster, &tally).await;
        stop.store(true, Ordering::Relaxed);
        done.killed
    };
    let (_, _, _, _, _, killed) = tokio::join!(
        writer(&cluster, "a", &stop, &tally),
        writer(&cluster, "b", &stop, &tally),
        bulk_writer(&cluster, "c", &stop, &tally),
        writes(&cluster, "d", &stop, &durable, on_replica),
        reader(&cluster, &before_ids, &stop, &tally),
        failure
    );

    // What the promoted replica holds of each writer's acknowledged writes.
    let acked = tally.acked.lock().expect("tally").clone();
    let on_new = |all: &[Acked]| {
        let expected: Vec<(String, i64)> = all.iter().map(|a| (a.id.clone(), a.version)).collect();
        parse_versions(&pair.query(pair.replica_port, &name, &stored_versions_sql(&expected)))
    };
    let stored = on_new(&acked);
    let twice = stored
        .iter()
        .filter(|(id, v)| acked.iter().any(|a| &a.id == id && a.version != *v))
        .count();
    let present: HashSet<&str> = stored.iter().map(|(id, _)| id.as_str()).collect();
    let lost: Vec<&Acked> = acked
        .iter()
        .filter(|a| !present.contains(a.id.as_str()))
        .collect();
    let durable_acked = durable.acked.lock().expect("tally").clone();
    let (durable_lost, durable_twice) =
        lost_and_twice(&durable.expected(&[]), &on_new(&durable_acked));
    let bulk = tally.acked_bulk.lock().expect("tally").clone();
    let bulk_present: usize = pair
        .query(pair.replica_port, &name, &count_sql(&bulk))
        .parse()
        .expect("a count");
    // "12 ms before the kill", "3 ms after the kill".
    let around_kill = |t: Instant| match killed.checked_duration_since(t) {
        Some(d) => format!("{} ms before the kill", d.as_millis()),
        None => format!("{} ms after the kill", (t - killed).as_millis()),
    };
    format!(
        "async, {}: single writes acknowledged {}, lost {} (first lost acknowledged {}, \
         last {}), applied twice {twice}; bulk records acknowledged {}, lost {}; \
         acknowledged on a replica {}, lost {durable_lost}, applied twice {durable_twice}; \
         {} write(s) failed, {} read(s) failed",
        match lag {
            Some(lag) => format!("replica stopped receiving {lag:?} before the kill"),
            None => "healthy replica".into(),
        },
        acked.len(),
        lost.len(),
        lost.iter()
            .map(|a| a.at)
            .min()
            .map_or("-".into(), around_kill),
        lost.iter()
            .map(|a| a.at)
            .max()
            .map_or("-".into(), around_kill),
        bulk.len(),
        bulk.len() - bulk_present,
        durable_acked.len(),
        tally.failed.load(Ordering::Relaxed),
        tally.reads_failed.load(Ordering::Relaxed),
    )
}
