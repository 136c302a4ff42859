//! Benchmark (its figures go to docs/BENCHMARKS.md): a shard's primary cut off the
//! network rather than killed. The formation of the failover suite's `cut_on_autoctl`
//! (pg_auto_failover, each node on a host of its own: a network namespace on a bridge of
//! the benchmark's own, the monitor and this process in this namespace), under two
//! writers, a bulk writer and a reader; the primary's link goes down, and once the
//! monitor has promoted the secondary and writes resumed, comes back.
//! `SHARDGATE_BENCH_ROUNDS` (1) times. Printed per run, from the cut: the cut-off
//! primary's PostgreSQL stopped by its own keeper, the promotion, the first acknowledged
//! write, the map followed, 40 more writes; writes acknowledged between the cut and the
//! promotion, acknowledged writes lost or applied twice on the new primary, writes and
//! reads failed; from the link's return, the old node a secondary again. The promises
//! themselves are the failover suite's (`control-plane/tests/failover/cut_on_autoctl.rs`).
//!
//! As root, with pg_auto_failover installed:
//! `eval "$(./setup.sh env)"; cargo bench --profile dev -p test-support --bench netcut`
//! (`cargo test --benches` runs nothing).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use test_support::failover::ha_shard::{self, Before};
use test_support::failover::harness;
use test_support::failover::workload::{
    bulk_writer, count_sql, lost_and_twice, parse_versions, reader, stored_versions_sql, writer,
    Tally,
};
use test_support::private::netns::Net;
use test_support::private::placement::Placement;

/// The monitor's and the nodes' ports (those of the suite's `cut_on_autoctl`: the two
/// never run at once, both take `harness::ONE_AT_A_TIME` within a process).
const PORTS: std::ops::Range<u16> = 26900..26950;

/// An acknowledgement recorded this soon after the cut may have reached this host
/// before it; counted apart.
const IN_TRANSIT: Duration = Duration::from_millis(500);

/// A run is given up this long after the cut, naming what had not happened.
const GIVE_UP: Duration = Duration::from_secs(90);

fn main() {
    if !test_support::bench::under_cargo_bench() {
        println!("the netcut benchmark runs only under `cargo bench` (docs/BENCHMARKS.md)");
        return;
    }
    test_support::bench::block_on(2, async {
        let rounds = harness::bench_setting("SHARDGATE_BENCH_ROUNDS", 1);
        for _ in 0..rounds {
            println!("{}", cut_and_heal().await);
        }
    });
}

/// How many single writes were acknowledged in `[from, to)`.
fn acked_between(tally: &Tally, from: Instant, to: Instant) -> usize {
    let acked = tally.acked.lock().expect("tally");
    acked.iter().filter(|a| a.at >= from && a.at < to).count()
}

/// One cut and its healing under load; its figures on one line.
async fn cut_and_heal() -> String {
    let what = "the netcut benchmark";
    let net = Net::create(2).expect("network namespaces (run as root)");
    let place = Placement::on(&net, PORTS);
    let shard = ha_shard::start_at(what, place)
        .await
        .expect("pg_autoctl installed");
    let (formation, settings, following) = (&shard.formation, &shard.settings, &shard.following);
    let name = settings.database.dbname.clone();
    let cluster = following.cluster.clone();
    let Before {
        acked: before,
        ids: before_ids,
        standby,
    } = shard.before_failure().await;
    let stop = AtomicBool::new(false);
    let tally = Tally::default();
    let failure = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let acked_before_cut = tally.acked_count();
        net.cut(0);
        let cut = Instant::now();
        let over = shard
            .over_the_cut(cut, &standby, acked_before_cut, &tally, GIVE_UP)
            .await;
        net.heal(0);
        let healed = Instant::now();
        let (rejoined, split_brain) = shard.rejoin(&tally, &stop, GIVE_UP).await;
        let times = (
            cut,
            over.stopped,
            over.promoted,
            over.followed,
            over.resumed,
        );
        (times, rejoined - healed, split_brain)
    };
    let (_, _, _, _, (times, rejoin, split_brain)) = tokio::join!(
        writer(&cluster, "a", &stop, &tally),
        writer(&cluster, "b", &stop, &tally),
        bulk_writer(&cluster, "c", &stop, &tally),
        reader(&cluster, &before_ids, &stop, &tally),
        failure
    );
    let (cut, stopped, promoted, followed, resumed) = times;
    let first_write = tally.first_ack_after(promoted).unwrap_or(promoted);
    let in_transit = acked_between(&tally, cut, cut + IN_TRANSIT);
    let during_cut = acked_between(&tally, cut + IN_TRANSIT, promoted);
    // What the new primary holds of every acknowledged write.
    let expected = tally.expected(&before);
    let stored = parse_versions(&formation.query(1, &name, &stored_versions_sql(&expected)));
    let (lost, twice) = lost_and_twice(&expected, &stored);
    let bulk = tally.acked_bulk.lock().expect("tally").clone();
    let bulk_present: usize = formation
        .query(1, &name, &count_sql(&bulk))
        .parse()
        .expect("a count");
    let ms = |d: Duration| d.as_millis();
    format!(
        "network cut of the primary: its PostgreSQL stopped by its keeper {} ms, promotion \
         {} ms, first acknowledged write {} ms, map followed {} ms, 40 more writes {} ms; \
         writes acknowledged between the cut and the promotion {during_cut} ({in_transit} \
         more within {} ms of the cut); acknowledged writes {} lost {lost}, applied twice \
         {twice}; bulk records {} lost {}; {} write(s) failed, {} read(s) failed of {}; \
         link healed -> old node a secondary {} ms{}",
        ms(stopped - cut),
        ms(promoted - cut),
        ms(first_write - cut),
        ms(followed - cut),
        ms(resumed - cut),
        ms(IN_TRANSIT),
        expected.len(),
        bulk.len(),
        bulk.len() - bulk_present,
        tally.failed.load(Ordering::Relaxed),
        tally.reads_failed.load(Ordering::Relaxed),
        tally.reads_served.load(Ordering::Relaxed) + tally.reads_failed.load(Ordering::Relaxed),
        ms(rejoin),
        if split_brain {
            " (SPLIT BRAIN: the old node was seen writable while it came back)"
        } else {
            ""
        }
    )
}
