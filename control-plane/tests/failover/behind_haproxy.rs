//! A real failover behind a service address: the shard's primary is HAProxy's `rw`
//! and its replicas HAProxy's `ro` (`private::haproxy`, whose checks read each node's
//! role from its startup parameters) in front of a private pg_auto_failover formation
//! (a monitor, a primary and a synchronous secondary), and the gateway is told only
//! those two addresses (`follow = "address"`), as under CloudNativePG or Patroni. Under
//! two writers, a bulk writer and a reader, node 0's whole machine dies (`kill -9` of
//! its keeper and PostgreSQL); nobody touches HAProxy or the map. Then:
//! - writes resume through the same address, on node 1;
//! - the failover watcher, seeing a writable primary on a higher timeline behind the
//!   address, records it in the map: the new identity (node 1, its timeline), term 2,
//!   a `failover` line naming both nodes and the address; the addresses stay;
//! - health shows node 1 behind the address and the failover;
//! - no acknowledged write is lost or applied twice, and no read failed.
//!
//! Its ports, as `haproxy_on_autoctl`'s: the formation in 26950-26979, HAProxy in
//! 26980-26999; the two may run at the same time, and `free_port` never hands one port
//! to both. Skipped, loudly, only when pg_autoctl or HAProxy is not installed and
//! `SHARDGATE_REQUIRE_HA` is unset.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use control_plane::failover::identity;
use control_plane::health::cluster_health;
use control_plane::map::meta;
use shard_manager::config::ShardFollows;
use shard_manager::{MapVersion, ShardId};
use test_support::failover::ha_shard;
use test_support::failover::harness::{self, Following, Scratch};
use test_support::failover::workload::{bulk_writer, reader, write_before, writer, Tally};
use test_support::private::autoctl::Formation;
use test_support::private::haproxy::{show, Haproxy, CHECK_USER};
use test_support::private::placement::Placement;

/// The formation's ports (monitor and nodes).
const FORMATION_PORTS: std::ops::Range<u16> = 26950..26980;
/// HAProxy's `rw` and `ro` ports.
const PROXY_PORTS: std::ops::Range<u16> = 26980..27000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_behind_haproxy_is_followed_recorded_and_loses_nothing_acknowledged() {
    let what = "the failover behind a service address";
    let Some(pg_autoctl) = ha_shard::pg_autoctl(what) else {
        return;
    };
    let Some(haproxy) = ha_shard::haproxy(what) else {
        return;
    };
    let _alone = harness::ONE_AT_A_TIME.lock().await;
    let t0 = Instant::now();
    let mut settings = harness::settings();
    let name = settings.database.dbname.clone();
    let user = settings.database.user.clone();
    let (formation, proxy) = tokio::task::spawn_blocking(move || {
        let place = Placement {
            ports: FORMATION_PORTS,
            ..Placement::loopback()
        };
        let formation = Formation::start_with(pg_autoctl, &user, &name, place, "");
        formation.query(0, "postgres", &format!("CREATE ROLE {CHECK_USER} LOGIN"));
        let proxy = Haproxy::start(
            &haproxy,
            [formation.addr(0), formation.addr(1)],
            PROXY_PORTS,
        );
        proxy.wait_states(
            &[("rw", "node0", "UP"), ("rw", "node1", "DOWN")],
            Duration::from_secs(10),
        );
        (std::sync::Arc::new(formation), proxy)
    })
    .await
    .unwrap();
    let name = settings.database.dbname.clone();
    let (old, new) = (formation.addr(0), formation.addr(1));
    settings.shards[0].primary = proxy.rw();
    settings.shards[0].replicas = vec![proxy.ro()];
    settings.shards[0].follow = ShardFollows::Address;
    // As under CloudNativePG: no monitor the gateways know of.
    settings.failover.ha_monitor = None;
    let _scratch = Scratch(settings.clone());
    harness::seed(&settings, &proxy.rw()).await;
    // As `shard-admin init` does: the primary behind the address recorded.
    let recorded = identity::once(&settings).await.expect("the identity");
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let before_timeline = recorded[0].seen.identity.timeline;
    assert_eq!(
        recorded[0].seen.identity.node.as_deref(),
        Some(old.as_str())
    );
    let mut meta_conn = meta::connect(&settings).await.expect("metadata");
    let init = meta::load(&mut meta_conn.client).await.unwrap().unwrap();
    assert_eq!((init.version, init.shards[0].term), (MapVersion(1), 1));
    let following = Following::start(&settings, &init);
    let cluster = following.cluster.clone();
    let before = write_before(&cluster, 20).await;
    let before_ids: Vec<String> = before.iter().map(|a| a.id.clone()).collect();
    assert_eq!(
        formation.query(0, "postgres", "SHOW synchronous_standby_names"),
        "ANY 1 (pgautofailover_standby_2)",
        "pg_auto_failover's synchronous replication"
    );
    let standby = ha_shard::connect(&settings, &new).await;
    assert_eq!(ha_shard::in_recovery(&standby).await, Some(true));
    eprintln!(
        "[{:?}] formation, HAProxy (rw {}, ro {}) and the map up, 20 records written through rw",
        t0.elapsed(),
        proxy.rw(),
        proxy.ro()
    );

    let stop = AtomicBool::new(false);
    let tally = Tally::default();
    let failure = async {
        let (acked_before_kill, killed, promoted) =
            ha_shard::kill_primary_under(&formation, &standby, &tally).await;
        let resumed = ha_shard::writes_resumed(
            &tally,
            acked_before_kill,
            killed,
            || cluster.map().term(0) == 2,
            || format!("term {}\n{}", cluster.map().term(0), show(&proxy.states())),
        )
        .await;
        let recorded = killed.elapsed();
        stop.store(true, Ordering::Relaxed);
        (killed, promoted, resumed, recorded)
    };
    let (_, _, _, _, (killed, promoted, resumed, recorded_after)) = tokio::join!(
        writer(&cluster, "a", &stop, &tally),
        writer(&cluster, "b", &stop, &tally),
        bulk_writer(&cluster, "c", &stop, &tally),
        reader(&cluster, &before_ids, &stop, &tally),
        failure
    );
    let first_write = tally
        .first_ack_after(promoted)
        .expect("a write acknowledged after the promotion");
    eprintln!(
        "behind HAProxy: kill -9 of the primary's node -> promotion {:?}, first acknowledged \
         write {:?}, recorded in the map {recorded_after:?}, 40 more writes {:?}; {} write(s) \
         failed\n{}\n{}",
        promoted - killed,
        first_write - killed,
        resumed - killed,
        tally.failed.load(Ordering::Relaxed),
        formation.show_state(),
        show(&proxy.states())
    );

    ha_shard::assert_reads_served(&tally);

    // The map: the same addresses, node 1's identity on a higher timeline, term 2, and
    // the failover's line naming both nodes and the address.
    let new_timeline: u32 = formation
        .query(
            1,
            "postgres",
            "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int4",
        )
        .parse()
        .expect("node 1's timeline");
    assert!(
        new_timeline > before_timeline,
        "{new_timeline} after {before_timeline}"
    );
    let map = meta::load(&mut meta_conn.client).await.unwrap().unwrap();
    assert_eq!(map.version, MapVersion(2));
    let entry = &map.shards[0];
    assert_eq!(
        (entry.primary.as_str(), entry.replicas.clone(), entry.term),
        (proxy.rw().as_str(), vec![proxy.ro()], 2)
    );
    let stored = entry.identity.clone().expect("an identity");
    assert_eq!(
        (stored.node.as_deref(), stored.timeline),
        (Some(new.as_str()), new_timeline)
    );
    assert_eq!(
        stored.system_identifier, recorded[0].seen.identity.system_identifier,
        "the same cluster"
    );
    let history = meta::history_lines(&meta_conn.client, 5).await.unwrap();
    assert_eq!(history[0].action, "failover");
    let line = format!(
        "shard-0 failed over behind {} from {old} (timeline {before_timeline}) to {new} \
         (timeline {new_timeline}), term 2",
        proxy.rw()
    );
    assert!(
        history[0].summary.starts_with(&line),
        "{}",
        history[0].summary
    );

    // Health: node 1 behind the address, the gateway's floor on its timeline, and the
    // failover shown.
    let behind = cluster.shard(ShardId(0)).unwrap().primary.behind.clone();
    let behind = behind.expect("behind an address");
    assert_eq!(behind.floor(), new_timeline);
    assert_eq!(behind.recorded(), Some(stored.clone()));
    let health = cluster_health(&cluster).await;
    let shown = health.shards[0].behind.as_ref().expect("behind");
    assert_eq!(shown.node.as_deref(), Some(new.as_str()));
    assert_eq!(shown.recorded.as_ref(), Some(&stored));
    let last = health.shards[0]
        .last_failover
        .as_ref()
        .expect("a failover shown");
    assert_eq!((last.to.as_str(), last.term), (new.as_str(), 2));

    // Every acknowledged write is on node 1, once.
    ha_shard::assert_acknowledged_on(&formation, 1, &name, &tally, &before);
}
