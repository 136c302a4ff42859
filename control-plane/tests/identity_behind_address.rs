//! Behind a service address (`follow = "address"`) the map records the primary's
//! identity the first time it is seen (`failover::identity`: by `init` and `migrate`,
//! or the first gateway), every gateway built from the map goes by it (its floor, and
//! what tells another cluster apart), and health shows the node the address leads to.
//! An old primary the address still leads to, once the map records a newer timeline, is
//! fenced by the failover watcher through the connection that reached it.
//!
//! Against the topology `./setup.sh up` starts, in scratch databases of its own (shard
//! 0's address is the shared primary's own, which leads to it as a `-rw` address does):
//! `cargo test -p control-plane --test identity_behind_address`, with the environment
//! of `eval "$(./setup.sh env)"`.

use control_plane::failover::identity;
use control_plane::health::cluster_health;
use control_plane::map::meta;
use serde_json::json;
use shard_manager::config::ShardFollows;
use shard_manager::{Cluster, ClusterError, Document, RecordId, ShardId, ShardKey};
use test_support::failover::harness::Following;
use test_support::scratch::Scratch;

async fn scratch() -> Scratch {
    Scratch::create_with(|s| {
        s.shards[0].follow = ShardFollows::Address;
        s.failover.write_wait_ms = 600;
    })
    .await
}

/// The timeline and system identifier of `server`, read directly.
async fn identity_of(scratch: &Scratch, server: &str) -> (u32, String) {
    let client = scratch.connect(server).await;
    let row = client
        .query_one(
            "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8),
                    (pg_control_system()).system_identifier::text",
            &[],
        )
        .await
        .expect("the identity");
    let hex: String = row.get(0);
    (u32::from_str_radix(&hex, 16).expect("hex"), row.get(1))
}

#[tokio::test]
async fn the_primary_s_identity_is_recorded_once_followed_and_shown() {
    let scratch = scratch().await;
    let settings = scratch.settings.clone();
    let address = scratch.primary(ShardId(0));
    let (timeline, system) = identity_of(&scratch, &address).await;

    let recorded = identity::once(&settings).await.expect("recorded");
    assert_eq!(recorded.len(), 1, "shard 0 only: {recorded:?}");
    assert_eq!(recorded[0].shard, ShardId(0));
    assert_eq!(
        recorded[0].to_string(),
        format!(
            "shard-0's primary behind {address} first seen: node {address}, timeline \
             {timeline}, system identifier {system}"
        )
    );
    assert!(
        identity::once(&settings).await.expect("again").is_empty(),
        "once"
    );

    let mut meta_conn = meta::connect(&settings).await.expect("metadata");
    let map = meta::load(&mut meta_conn.client)
        .await
        .expect("load")
        .expect("a map");
    let stored = map.shards[0].identity.clone().expect("recorded in the map");
    assert_eq!(stored.timeline, timeline);
    assert_eq!(stored.system_identifier.as_deref(), Some(system.as_str()));
    assert_eq!(stored.node.as_deref(), Some(address.as_str()));
    assert_eq!(stored.shard, Some(0));
    assert_eq!(
        map.shards[1].identity, None,
        "a shard following its servers"
    );
    assert_eq!(map.shards[0].term, 1, "no new term");

    // A gateway built from the map goes by it; health shows where the address leads.
    let cluster = Cluster::with_map(&settings, &map).expect("a cluster");
    let behind = cluster.shard(ShardId(0)).unwrap().primary.behind.clone();
    let behind = behind.expect("a primary behind an address");
    assert_eq!(behind.recorded(), Some(stored.clone()));
    assert_eq!(behind.floor(), timeline);
    let health = cluster_health(&cluster).await;
    let shard0 = &health.shards[0];
    assert_eq!(shard0.follows, ShardFollows::Address);
    let shown = shard0.behind.as_ref().expect("behind an address");
    assert_eq!(shown.node.as_deref(), Some(address.as_str()));
    assert_eq!(shown.timeline, Some(timeline));
    assert_eq!(shown.writable, Some(true));
    assert_eq!(shown.recorded.as_ref(), Some(&stored));
    assert!(shard0.primary.up, "{:?}", shard0.primary.error);
    assert!(health.shards[1].behind.is_none());
    let json = serde_json::to_value(&health).expect("json");
    assert_eq!(json["shards"][0]["follows"], "address");
    assert_eq!(json["shards"][1]["follows"], "servers");

    // Another gateway records nothing again, and reads what the first recorded.
    let seen = behind.last_seen().expect("seen").0;
    let (held, now) = identity::record_first(&settings, ShardId(0), &seen)
        .await
        .expect("record_first");
    assert_eq!((held, now), (Some(stored), false));
}

#[tokio::test]
async fn another_cluster_behind_the_address_gets_no_write() {
    let scratch = scratch().await;
    let settings = scratch.settings.clone();
    identity::once(&settings).await.expect("recorded");
    // As if the database behind the address were re-created: another system identifier.
    let meta_client = scratch.meta().await;
    meta_client
        .execute(
            "UPDATE map_shards SET system_identifier = '1' WHERE id = 0",
            &[],
        )
        .await
        .expect("another cluster recorded");
    let map = scratch.map().await;
    let cluster = Cluster::with_map(&settings, &map).expect("a cluster");
    let users = cluster.tables().parse("users").expect("users");
    let key = on_shard_0(&cluster, "elsewhere");
    let refused = cluster
        .write(
            &users,
            &key,
            RecordId::parse("e1").unwrap(),
            Document::parse(json!({"n": 1})).unwrap(),
            None,
        )
        .await
        .expect_err("never followed until adopted");
    match &refused {
        ClusterError::Unavailable {
            reason,
            maybe_committed,
            ..
        } => {
            assert!(!maybe_committed);
            assert!(
                reason.contains("another cluster or shard than the recorded primary"),
                "{reason}"
            );
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    let direct = scratch.connect(&scratch.primary(ShardId(0))).await;
    let n: i64 = direct
        .query_one("SELECT count(*) FROM records WHERE id = 'e1'", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 0, "nothing written");
}

/// A shard key `cluster` routes to shard 0, made from `prefix`.
fn on_shard_0(cluster: &Cluster, prefix: &str) -> shard_manager::RoutedKey {
    (0..10_000)
        .map(|n| {
            let key = ShardKey::parse(&format!("{prefix}-{n}")).unwrap();
            cluster.router().route(key).unwrap()
        })
        .find(|k| k.shard() == ShardId(0))
        .expect("a key on shard 0")
}

/// Slots the scratch database on `server` owns.
async fn owned(scratch: &Scratch, server: &str) -> i64 {
    let client = scratch.connect(server).await;
    client
        .query_one("SELECT count(*) FROM shardgate_slots", &[])
        .await
        .expect("shardgate_slots")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_primary_the_address_still_leads_to_is_fenced_through_that_connection() {
    let scratch = scratch().await;
    let settings = scratch.settings.clone();
    let address = scratch.primary(ShardId(0));
    identity::once(&settings).await.expect("recorded");
    let before = scratch.map().await;
    // As if another gateway had recorded a promotion behind the address (the primary
    // writes on a higher timeline now) while the address still leads to the old one.
    scratch
        .meta()
        .await
        .execute(
            "UPDATE map_shards SET timeline = timeline + 1 WHERE id = 0",
            &[],
        )
        .await
        .expect("a newer timeline recorded");
    let map = scratch.map().await;
    let newer = map.shards[0].identity.clone().expect("recorded").timeline;
    assert!(owned(&scratch, &address).await > 0, "the shard owns slots");

    // A gateway following that map probes the address at once, reaches the old primary
    // writable on a lower timeline, and fences it through that connection.
    let following = Following::start(&settings, &map);
    let started = std::time::Instant::now();
    while owned(&scratch, &address).await > 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "the old primary behind the address was not fenced"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let told = scratch
        .connect(&address)
        .await
        .query_one("SELECT shard, version FROM shardgate_map", &[])
        .await
        .expect("shardgate_map");
    assert_eq!(
        (told.get::<_, i32>(0), told.get::<_, i64>(1)),
        (0, map.version.0 as i64)
    );
    let behind = following
        .cluster
        .shard(ShardId(0))
        .unwrap()
        .primary
        .behind
        .clone();
    assert_eq!(behind.expect("behind").floor(), newer);

    // A gateway still going by the old identity writes there: the server refuses it.
    let stale = Cluster::with_map(&settings, &before).expect("a stale cluster");
    let users = stale.tables().parse("users").expect("users");
    let key = on_shard_0(&stale, "old");
    let refused = stale
        .write(
            &users,
            &key,
            RecordId::parse("o1").unwrap(),
            Document::parse(json!({"n": 1})).unwrap(),
            None,
        )
        .await
        .expect_err("a fenced server takes no write");
    assert!(
        matches!(refused, ClusterError::NotOwner { .. }),
        "{refused:?}"
    );
    let direct = scratch.connect(&address).await;
    let n: i64 = direct
        .query_one("SELECT count(*) FROM records WHERE id = 'o1'", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 0, "nothing written");
}
