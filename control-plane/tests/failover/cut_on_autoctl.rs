//! The shard's primary cut off from the network rather than killed (issue #30): the
//! formation of `on_autoctl`, each node on a host of its own (`netns`: a network
//! namespace on a bridge of the test's own), the monitor and the test in this namespace.
//! Under two writers, a bulk writer and a reader, the primary's link goes down: its
//! keeper and PostgreSQL run on, cut off from the monitor, the standby and the gateway,
//! whose packets to it go nowhere (connections hang, nothing is refused). Then: the
//! monitor promotes the secondary; no write is acknowledged between the cut and the
//! promotion; writes resume on the new primary; no acknowledged write is lost or applied
//! twice (so none was acknowledged by the cut-off primary: nothing it took could reach
//! the new one); no read fails; the map names the new primary at term 2. The old
//! primary's keeper stops its PostgreSQL by itself (seen from its own host) within 90 s:
//! it counts its standby as reached while a WAL sender for it lives, so it sees its
//! partition only past `wal_sender_timeout` (30 s as pg_auto_failover sets it), long
//! after the promotion; the test prints that overlap. With the link back, the old node
//! rejoins as a secondary, is never seen writable, and holds exactly what the new
//! primary holds.
//!
//! Skipped, loudly, when network namespaces cannot be made (not root) or pg_autoctl is
//! not installed, unless `SHARDGATE_REQUIRE_HA` is set (and, for the namespaces, we are
//! root).

use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use test_support::failover::ha_shard::{self, Before};
use test_support::failover::workload::{bulk_writer, reader, writer, Tally};
use test_support::private::netns::Net;
use test_support::private::placement::Placement;

/// The monitor's and the nodes' ports: apart from `on_autoctl`'s 26850-26899, so both
/// may run at once.
const PORTS: std::ops::Range<u16> = 26900..26950;

/// An acknowledgement recorded this soon after the link went down may have reached
/// this host before (its writer records it when its task next runs, 1-2 per run at up
/// to 50 ms on this loaded 2-core machine); like every acknowledged write, each must be
/// on the new primary.
const IN_TRANSIT: Duration = Duration::from_millis(500);

/// Two hosts on a network of the test's own; None, loudly, where none can be made.
fn net_or_skip(what: &str) -> Option<Net> {
    match Net::create(2) {
        Ok(net) => Some(net),
        Err(e) => {
            let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
            if root && std::env::var_os("SHARDGATE_REQUIRE_HA").is_some() {
                panic!("SHARDGATE_REQUIRE_HA is set and we are root, but no network namespace could be made: {e}");
            }
            eprintln!(
                "\n!!!!!!!!!!\n!!! SKIPPED: no network namespaces here ({e}), so {what} was \
                 NOT tested.\n!!! It needs root (ip netns, veth, bridge); set \
                 SHARDGATE_REQUIRE_HA=1 as root to make this a failure.\n!!!!!!!!!!\n"
            );
            None
        }
    }
}

/// How many single writes were acknowledged in `[from, to)`.
fn acked_between(tally: &Tally, from: Instant, to: Instant) -> usize {
    let acked = tally.acked.lock().unwrap();
    acked.iter().filter(|a| a.at >= from && a.at < to).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_on_pg_auto_failover_whose_primary_is_cut_off_fails_over_and_the_old_one_rejoins() {
    let what = "the network cut on pg_auto_failover";
    let t0 = Instant::now();
    let Some(net) = net_or_skip(what) else {
        return;
    };
    let place = Placement::on(&net, PORTS);
    let Some(shard) = ha_shard::start_at(what, place).await else {
        return;
    };
    let (formation, settings, following) = (&shard.formation, &shard.settings, &shard.following);
    let name = settings.database.dbname.clone();
    let (old, new) = (formation.addr(0), formation.addr(1));
    let cluster = following.cluster.clone();
    let Before {
        acked: before,
        ids: before_ids,
        standby,
    } = shard.before_failure().await;
    eprintln!(
        "[{:?}] formation up on {old} and {new} (monitor {}:{}), map seeded, 20 records written",
        t0.elapsed(),
        net.root_addr,
        formation.monitor_port
    );
    eprintln!(
        "wal_sender_timeout {} (the cut-off primary's keeper counts its standby as reached \
         while a WAL sender for it lives)",
        formation.query(0, "postgres", "SHOW wal_sender_timeout")
    );
    let stop = AtomicBool::new(false);
    let tally = Tally::default();
    let failure = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let acked_before_cut = tally.acked_count();
        assert!(
            acked_before_cut > 10,
            "writers under way: {acked_before_cut}"
        );

        net.cut(0);
        let cut = Instant::now();
        // The old primary stops its PostgreSQL by itself (asked on its own host), the
        // monitor promotes the secondary (nobody does either by hand), the gateway
        // follows and writes resume.
        let over = shard
            .over_the_cut(
                cut,
                &standby,
                acked_before_cut,
                &tally,
                Duration::from_secs(90),
            )
            .await;
        eprintln!("after the failover:\n{}", formation.show_state());

        // The link back, under the same load: the old node's keeper hears from the
        // monitor that it was demoted, and makes it a secondary.
        net.heal(0);
        let healed = Instant::now();
        let (rejoined, split_brain) = shard.rejoin(&tally, &stop, Duration::from_secs(90)).await;
        let times = (
            cut,
            over.stopped,
            over.promoted,
            over.followed,
            over.resumed,
        );
        (times, healed, rejoined, split_brain)
    };
    let (_, _, _, _, (times, healed, rejoined, split_brain)) = tokio::join!(
        writer(&cluster, "a", &stop, &tally),
        writer(&cluster, "b", &stop, &tally),
        bulk_writer(&cluster, "c", &stop, &tally),
        reader(&cluster, &before_ids, &stop, &tally),
        failure
    );
    let (cut, stopped, promoted, followed, resumed) = times;
    let first_write = tally
        .first_ack_after(promoted)
        .expect("a write acknowledged after the promotion");
    let in_transit = acked_between(&tally, cut, cut + IN_TRANSIT);
    let during_cut = acked_between(&tally, cut + IN_TRANSIT, promoted);
    eprintln!(
        "pg_auto_failover: cut of the primary's link -> its PostgreSQL stopped by its keeper \
         {:?}, promotion {:?}, first acknowledged write {:?}, map followed {:?}, 40 more writes \
         {:?}; {} write(s) \
         acknowledged between the cut and the promotion ({in_transit} more within {IN_TRANSIT:?} \
         of it); {} write(s) failed, {} read(s) failed of {}; link healed -> old node a \
         secondary {:?}{}",
        stopped - cut,
        promoted - cut,
        first_write - cut,
        followed - cut,
        resumed - cut,
        during_cut,
        tally.failed.load(Ordering::Relaxed),
        tally.reads_failed.load(Ordering::Relaxed),
        tally.reads_served.load(Ordering::Relaxed) + tally.reads_failed.load(Ordering::Relaxed),
        rejoined - healed,
        if split_brain {
            " (SPLIT BRAIN: the old node was seen writable while it came back)"
        } else {
            ""
        }
    );
    eprintln!("after the rejoin:\n{}", formation.show_state());

    // Nothing acknowledged by the cut-off primary after the cut: it could reach no
    // standby (so a commit there waits) and the test could not hear from it.
    assert_eq!(
        during_cut, 0,
        "writes acknowledged between the cut and the promotion"
    );
    if stopped > first_write {
        // Two nodes in read-write; only synchronous replication keeps the old one from
        // acknowledging anything (its commits wait for a standby it cannot reach).
        eprintln!(
            "the cut-off primary ran on {:?} after the promoted node acknowledged a write",
            stopped - first_write
        );
    }
    assert!(
        !split_brain,
        "the old node was seen writable while it came back"
    );
    ha_shard::assert_reads_served(&tally);

    ha_shard::assert_failed_over(settings, &cluster, &old, &new).await;
    // A write acknowledged by the cut-off primary could not be on the new one: lost.
    ha_shard::assert_acknowledged_on(formation, 1, &name, &tally, &before);
    ha_shard::assert_replayed(formation, 0, 1, &name).await;
}
