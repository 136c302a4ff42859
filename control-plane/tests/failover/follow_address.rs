//! A shard behind an address (`[[shards]] follow = "address"`), as far as the gateway
//! has it: the setting seeded into the map (`map_shards.follow`) and read back by every
//! gateway, `switchover` refused (its HA manager switches it over), and the failover
//! watcher leaving it alone. The shard is a private pair (`pair`, ports 26950-26979, as
//! `haproxy_on_autoctl`'s formation: the failover tests run one at a time) standing in
//! for a `-rw` and a `-ro` address. Its replica is promoted by hand while the primary
//! still runs: a watcher following the servers would record the promotion or fence the
//! replica; behind an address the map keeps its servers, term and slots.

use std::sync::Arc;
use std::time::{Duration, Instant};

use control_plane::failover::switchover::switchover;
use control_plane::map::meta;
use shard_manager::config::ShardFollows;
use shard_manager::{MapVersion, ShardId};
use test_support::failover::harness::{self, Following, Scratch};
use test_support::private::pair::Pair;

const PORTS: std::ops::Range<u16> = 26950..26980;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_behind_an_address_is_in_the_map_refused_a_switchover_and_left_by_the_watcher() {
    let _alone = harness::ONE_AT_A_TIME.lock().await;
    let mut settings = harness::settings();
    let user = settings.database.user.clone();
    let name = settings.database.dbname.clone();
    let (u, n) = (user.clone(), name.clone());
    let pair = tokio::task::spawn_blocking(move || {
        Arc::new(Pair::alone(&u, &n, "fo-address", PORTS).with_replica())
    })
    .await
    .unwrap();
    settings.shards[0].primary = pair.primary();
    settings.shards[0].replicas = vec![pair.replica()];
    settings.shards[0].follow = ShardFollows::Address;
    // As under CloudNativePG: no monitor the gateways know of.
    settings.failover.ha_monitor = None;
    let _scratch = Scratch(settings.clone());
    let init = harness::seed(&settings, &pair.primary()).await;
    assert_eq!(init.shards[0].follow, ShardFollows::Address);

    // Stored, and read back as every gateway reads the map.
    let mut meta_conn = meta::connect(&settings).await.expect("metadata");
    let stored: String = meta_conn
        .client
        .query_one("SELECT follow FROM map_shards WHERE id = 0", &[])
        .await
        .expect("map_shards.follow")
        .get(0);
    assert_eq!(stored, "address");
    let loaded = meta::load(&mut meta_conn.client)
        .await
        .expect("load the map")
        .expect("a map");
    assert_eq!(loaded.shards[0].follow, ShardFollows::Address);
    let following = Following::start(&settings, &loaded);
    let shard = following.cluster.shard(ShardId(0)).unwrap();
    assert_eq!(shard.follow, ShardFollows::Address);

    // A planned switchover is its HA manager's.
    let refused = switchover(&settings, ShardId(0), None, "test@host", |_| {})
        .await
        .expect_err("a switchover behind an address is refused");
    assert_eq!(
        refused.to_string(),
        format!(
            "refused: shard-0 follows an address ({}), behind which its HA manager moves the \
             primary: switch over with its HA manager: `kubectl cnpg promote`, `patronictl \
             switchover`; nothing was changed",
            pair.primary()
        )
    );

    // The replica's address now leads to a writable server on a newer timeline, beside
    // the primary. The health monitor sees it; the watcher does nothing with it.
    let slots_before = pair.query(
        pair.replica_port,
        &name,
        "SELECT count(*) FROM shardgate_slots",
    );
    assert_ne!(slots_before, "0", "the replica holds the shard's slots");
    let p = pair.clone();
    tokio::task::spawn_blocking(move || p.promote_replica())
        .await
        .unwrap();
    let started = Instant::now();
    while shard.replicas[0].seen_writable() != Some(true) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the health monitor did not see the promoted replica writable"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Twenty of the watcher's rounds (failover.check_ms = 100).
    tokio::time::sleep(Duration::from_secs(2)).await;

    let after = meta::load(&mut meta_conn.client)
        .await
        .expect("load the map")
        .expect("a map");
    assert_eq!(after.version, MapVersion(1), "the map did not change");
    assert_eq!(after.shards[0].term, 1);
    assert_eq!(after.shards[0].primary, pair.primary());
    assert_eq!(after.shards[0].replicas, vec![pair.replica()]);
    let lines: i64 = meta_conn
        .client
        .query_one("SELECT count(*) FROM map_history", &[])
        .await
        .expect("map_history")
        .get(0);
    assert_eq!(lines, 1, "the seed's line only");
    // Not fenced: a fence by address would have emptied its slots.
    let slots_after = pair.query(
        pair.replica_port,
        &name,
        "SELECT count(*) FROM shardgate_slots",
    );
    assert_eq!(slots_after, slots_before);
    assert_eq!(
        pair.query(pair.replica_port, &name, "SELECT pg_is_in_recovery()"),
        "f",
        "the replica was promoted"
    );
}
