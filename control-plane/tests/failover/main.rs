//! A shard survives losing its primary, with no gateway started: the request path
//! (`Cluster`) follows the map through the control plane's follower, the health
//! monitor and the failover watcher run beside it, as in a gateway.
//!
//! The shard is a private pair (`pair`): a primary with a synchronous streaming
//! replica. Two writers and a reader run while the primary's postmaster is killed
//! (kill -9) and its replica promoted (`pg_ctl promote`, the HA manager's step). Then:
//! writes resume on the new primary, every acknowledged write is there exactly once,
//! no read failed, and the map names the new primary at term 2 with a `failover`
//! history line. The old primary is then started again writable (split brain, on
//! purpose): the watcher fences it, and a gateway still routing with the old map has
//! its write refused there (SG001) and nothing written.
//!
//! `on_autoctl` does the same with a real HA manager deciding: a private
//! pg_auto_failover formation whose primary node (keeper and postmaster) is killed.
//!
//! Needs the metadata server of `./setup.sh up` (a scratch database there, dropped at
//! the end) and PostgreSQL's programs: `flock -s /tmp/sg-cluster.lock cargo test -p
//! control-plane --test failover`, with the environment of `eval "$(./setup.sh env)"`.
//!
//! ## Layout
//! The private servers (`programs`, `pair`, `autoctl`, `keepers`, `placement`, `netns`)
//! and what the tests set up alike (`harness`, `workload`, `ha_shard`) are in the
//! `test-support` crate (`private`, `failover`), which the benchmarks `outage` and
//! `replication` (control-plane's `benches/`) share.
//! - `archive_repo`: a pgBackRest repository with one stanza listing a formation's nodes.
//! - `archive_across_failover`: WAL archived by whichever node is primary, and a restore
//!   across the failover's timeline switch.
//! - `on_autoctl`: the test on pg_auto_failover.
//! - `cut_on_autoctl`: the same with the primary cut off the network, not killed.
//! - `haproxy_on_autoctl`: HAProxy's fixed addresses before a formation (`rw` to the
//!   primary, `ro` to the standbys) following its failover, with no gateway.
//! - `switchover_on_autoctl`: a planned switchover on pg_auto_failover, and a refused one.
//! - `two_shards`: a synchronous pair (shard 0) beside a plain primary (shard 1).
//! - `prepared_across_failover`: prepared parts of a two-shard transaction carried to the
//!   promoted replica and resolved there by the recovery.
//! - `prepared_on_autoctl`: the same with pg_auto_failover promoting a formation's
//!   secondary after its primary's machine is killed.
//! - `shards`: those two shards, or a formation beside a plain primary, as the tests
//!   across a failover see them (whoever promotes shard 0's replica).
//! - `move_across_failover`: a slot move whose source (or target) fails over while it
//!   copies, and one whose source fails over at the switch.
//! - `move_on_autoctl`: the same with pg_auto_failover promoting a formation's
//!   secondary after its primary's machine is killed.
//! - `import_source`: an import's source database beside shard 1, its table and writer.
//! - `import_across_failover`: an import whose target shard fails over while it copies,
//!   and one whose target fails over as it starts syncing.
//! - `follow_address`: a shard behind an address (`follow = "address"`) in the map,
//!   refused a switchover, and left alone by the watcher.
//! - `follow_once`: a promotion no gateway saw, recorded by an admin command.
//! - `unrecorded_promotion`: a promotion the map cannot record: writes refused at once.
//! - `async_loss`: the pair test in asynchronous mode, with a healthy and with a lagging
//!   replica: the acknowledged writes lost are exactly those the replica had not received.

mod archive_across_failover;
mod archive_repo;
mod async_loss;
mod behind_haproxy;
mod cut_on_autoctl;
mod follow_address;
mod follow_once;
mod haproxy_on_autoctl;
mod import_across_failover;
mod import_source;
mod move_across_failover;
mod move_on_autoctl;
mod on_autoctl;
mod prepared_across_failover;
mod prepared_on_autoctl;
mod shards;
mod switchover_on_autoctl;
mod two_shards;
mod unrecorded_promotion;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use control_plane::map::meta;
use shard_manager::{Cluster, ClusterError, MapVersion, RecordId, ShardKey};
use test_support::failover::harness::{self, Following, Scratch};
use test_support::failover::workload::{
    bulk_writer, count_sql, doc, lost_and_twice, parse_versions, reader, stored_versions_sql,
    write_before, writer, Tally,
};
use test_support::private::pair::Pair;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_whose_primary_is_killed_follows_its_promoted_replica_and_fences_the_old_one() {
    let _alone = harness::ONE_AT_A_TIME.lock().await;
    let mut settings = harness::settings();
    let user = settings.database.user.clone();
    let name = settings.database.dbname.clone();
    let t0 = Instant::now();
    let pair = Arc::new(Pair::start(&user, &name));
    eprintln!("[{:?}] the pair is up", t0.elapsed());
    settings.shards[0].primary = pair.primary();
    settings.shards[0].replicas = vec![pair.replica()];
    let _scratch = Scratch(settings.clone());
    let init = harness::seed(&settings, &pair.primary()).await;
    eprintln!("[{:?}] the map is seeded", t0.elapsed());
    assert_eq!(init.version, MapVersion(1));
    assert_eq!(init.shards[0].term, 1);

    let following = Following::start(&settings, &init);
    let cluster = following.cluster.clone();
    let table = cluster.tables().parse("users").expect("users");

    // Records the reader reads throughout (acknowledged = on the synchronous replica).
    let before = write_before(&cluster, 20).await;
    let before_ids: Vec<String> = before.iter().map(|a| a.id.clone()).collect();
    eprintln!("[{:?}] 20 records written", t0.elapsed());
    let stop = AtomicBool::new(false);
    let tally = Tally::default();
    let failure = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        // The primary dies; a second later its HA manager promotes the replica; writes
        // resume on the new primary.
        let done = harness::fail_over(&pair, &cluster, &tally).await;
        stop.store(true, Ordering::Relaxed);
        (done.killed, done.promoted, done.resumed)
    };
    let (_, _, _, _, (killed, promoted, resumed_at)) = tokio::join!(
        writer(&cluster, "a", &stop, &tally),
        writer(&cluster, "b", &stop, &tally),
        bulk_writer(&cluster, "c", &stop, &tally),
        reader(&cluster, &before_ids, &stop, &tally),
        failure
    );
    eprintln!(
        "failover: killed, promoted after {:?}, 40 more writes acknowledged {:?} after the kill; {} write(s) failed",
        promoted - killed,
        resumed_at - killed,
        tally.failed.load(Ordering::Relaxed)
    );

    eprintln!("[{:?}] writers stopped", t0.elapsed());
    // Reads were served throughout.
    assert_eq!(
        tally.reads_failed.load(Ordering::Relaxed),
        0,
        "reads failed during the failover"
    );
    assert!(tally.reads_served.load(Ordering::Relaxed) > 50);

    // The map names the new primary, one term later, with its history line.
    let mut meta_conn = meta::connect(&settings).await.expect("metadata");
    let map = meta::load(&mut meta_conn.client).await.unwrap().unwrap();
    assert_eq!(map.version, MapVersion(2));
    assert_eq!(map.shards[0].primary, pair.replica());
    assert_eq!(map.shards[0].replicas, vec![pair.primary()]);
    assert_eq!(map.shards[0].term, 2);
    assert_eq!(cluster.map().term(0), 2, "the gateway's view of the term");
    let history = meta::history_lines(&meta_conn.client, 5).await.unwrap();
    assert_eq!(history[0].action, "failover");
    assert!(
        history[0].summary.contains(&format!(
            "from {} to {}, term 2",
            pair.primary(),
            pair.replica()
        )),
        "{}",
        history[0].summary
    );

    // Every acknowledged write is on the new primary, once: at the very version its
    // acknowledgement gave (a second application would have raised it).
    let expected = tally.expected(&before);
    let stored =
        parse_versions(&pair.query(pair.replica_port, &name, &stored_versions_sql(&expected)));
    let (lost, twice) = lost_and_twice(&expected, &stored);
    eprintln!(
        "acknowledged {}: lost {lost}, applied twice {twice}",
        expected.len()
    );
    // Every record of an acknowledged bulk write is there too.
    let bulk = tally.acked_bulk.lock().unwrap().clone();
    assert!(bulk.len() > 30, "bulk writes under way: {}", bulk.len());
    let present = pair.query(pair.replica_port, &name, &count_sql(&bulk));
    eprintln!(
        "acknowledged by bulk writes {}: present {present}",
        bulk.len()
    );
    assert_eq!(
        present,
        bulk.len().to_string(),
        "acknowledged bulk records lost"
    );
    assert_eq!(
        (lost, twice),
        (0, 0),
        "acknowledged writes lost or applied twice"
    );
    assert_eq!(stored, expected);

    // The old primary comes back writable: the watcher fences it.
    let restarting = Instant::now();
    let p = pair.clone();
    tokio::task::spawn_blocking(move || p.restart_old_primary())
        .await
        .unwrap();
    eprintln!(
        "the old primary started again in {:?}",
        restarting.elapsed()
    );
    let fenced = Instant::now();
    loop {
        let owned = pair.query(
            pair.primary_port,
            &name,
            "SELECT count(*) FROM shardgate_slots",
        );
        if owned == "0" {
            break;
        }
        assert!(
            fenced.elapsed() < Duration::from_secs(10),
            "not fenced: owns {owned} slots"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A gateway still routing with the old map writes there: refused, nothing written.
    eprintln!("fenced {:?} after it started", fenced.elapsed());
    let stale = Cluster::with_map(&settings, &init).expect("a stale cluster");
    let id = "stale-1";
    let key = stale.router().route(ShardKey::parse(id).unwrap()).unwrap();
    let refused = stale
        .write(&table, &key, RecordId::parse(id).unwrap(), doc(1), None)
        .await
        .expect_err("the old primary must refuse a stale gateway's write");
    assert!(
        matches!(refused, ClusterError::NotOwner { told: 2, .. }),
        "{refused:?}"
    );
    let on_old = pair.query(
        pair.primary_port,
        &name,
        "SELECT count(*) FROM records WHERE id = 'stale-1'",
    );
    assert_eq!(on_old, "0");
    // The following cluster still writes to the new primary.
    let key = cluster
        .router()
        .route(ShardKey::parse("after-1").unwrap())
        .unwrap();
    cluster
        .write(
            &table,
            &key,
            RecordId::parse("after-1").unwrap(),
            doc(1),
            None,
        )
        .await
        .expect("a write after the old primary came back");
    let on_new = pair.query(
        pair.replica_port,
        &name,
        "SELECT count(*) FROM records WHERE id = 'after-1'",
    );
    let on_old = pair.query(
        pair.primary_port,
        &name,
        "SELECT count(*) FROM records WHERE id = 'after-1'",
    );
    assert_eq!((on_new.as_str(), on_old.as_str()), ("1", "0"));
}
