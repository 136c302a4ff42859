//! The control plane drives the request path, with no gateway started: the map is seeded
//! in a metadata database and the shards are told their slots (`map::change::init`), a
//! follower hands new versions to the request path's `MapState`, and a slot given to
//! another shard (`map::change::assign`) is refused by its old shard with SQLSTATE SG001,
//! which the request path reads by code and answers by rerouting once, as its retry
//! policy says.
//!
//! Against the topology `./setup.sh up` starts, in a scratch database of its own on
//! every primary and on the metadata server (dropped at the end), so it changes nothing
//! shared: `flock -s /tmp/sg-cluster.lock cargo test -p control-plane --test
//! map_drives_requests`, with the environment of `eval "$(./setup.sh env)"`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use control_plane::map::{change, Follower, Identity};
use shard_manager::wal::Consistency;
use shard_manager::{
    config, Cluster, ClusterError, ClusterSettings, Document, MapVersion, RecordId, ShardId,
    ShardKey,
};
use test_support::maintenance::{maintenance, on_own_runtime};
use test_support::scratch::migrate;

fn settings() -> ClusterSettings {
    let mut settings: ClusterSettings = config::load(None).expect("settings");
    let name = format!("sgtest_cp_{}", uuid::Uuid::new_v4().simple());
    settings.database.dbname = name.clone();
    settings.metadata.dbname = name;
    settings.database.pool_max_size = 4;
    settings
}

/// Drops the scratch databases however the test ends.
struct Scratch(ClusterSettings);

impl Drop for Scratch {
    fn drop(&mut self) {
        let settings = self.0.clone();
        on_own_runtime(async move {
            let drop = format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                settings.database.dbname
            );
            let mut servers: Vec<String> =
                settings.shards.iter().map(|s| s.primary.clone()).collect();
            servers.push(settings.metadata.address.clone());
            for addr in servers {
                maintenance(&settings, &addr, &drop).await;
            }
        });
    }
}

/// A key of `shard` under `map`'s router, other than `not`.
fn key_on(cluster: &Cluster, shard: ShardId, not: Option<u32>) -> shard_manager::RoutedKey {
    let router = cluster.router();
    (0..10_000)
        .map(|i| {
            router
                .route(ShardKey::parse(&format!("user_{i}")).expect("a key"))
                .expect("routes")
        })
        .find(|k| k.shard() == shard && Some(k.slot().0) != not)
        .expect("a key on the shard")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_given_to_another_shard_is_refused_by_sqlstate_and_rerouted_once() {
    let settings = settings();
    let name = settings.database.dbname.clone();
    let _scratch = Scratch(settings.clone());
    for shard in &settings.shards {
        maintenance(
            &settings,
            &shard.primary,
            &format!("CREATE DATABASE {name}"),
        )
        .await;
        migrate(&settings, &shard.primary).await;
    }
    maintenance(
        &settings,
        &settings.metadata.address,
        &format!("CREATE DATABASE {name}"),
    )
    .await;

    // The control plane seeds the map and tells every shard its slots.
    let init = change::init(&settings).await.expect("init");
    assert!(init.seeded);
    assert_eq!(init.map.version, MapVersion(1));
    assert_eq!(init.told.len(), settings.shards.len());

    // The request path, following the map through the control plane's follower.
    let cluster = Arc::new(Cluster::with_map(&settings, &init.map).expect("cluster"));
    let _follower = Follower::spawn(cluster.map().clone(), Identity::new("test:0".into()));
    let table = cluster.tables().parse("users").expect("users");

    // A write and a strong read on the key's owner.
    let key = key_on(&cluster, ShardId(0), None);
    let data = Document::parse(serde_json::json!({"name": "Ada"})).expect("a document");
    let written = cluster
        .write(&table, &key, RecordId::parse("a1").unwrap(), data, None)
        .await
        .expect("write");
    assert_eq!(
        (written.shard, written.upserted.version > 0),
        (ShardId(0), true)
    );
    let read = cluster
        .read(
            &table,
            &key,
            &RecordId::parse("a1").unwrap(),
            Consistency::Strong,
        )
        .await
        .expect("read");
    assert_eq!(read.shard, ShardId(0));
    assert!(read.value.is_some(), "the record written is read back");

    // Another slot of shard 0, with no rows, is given to shard 1.
    let stale = key_on(&cluster, ShardId(0), Some(key.slot().0));
    let slot = stale.slot().0;
    let assigned = change::assign(&settings, &[format!("{slot}=1")], false)
        .await
        .expect("assign");
    assert_eq!(assigned.map.version, MapVersion(2));
    assert_eq!(assigned.changes.len(), 1);

    // Shard 0 itself refuses the slot now: SQLSTATE SG001, naming the version it goes by.
    let refused = cluster.shards()[0]
        .primary
        .run(async |conn| {
            shard_manager::wire::find(conn, "users", (stale.key().as_str(), slot as i32), "x").await
        })
        .await;
    match refused {
        Err(ClusterError::NotOwner { shard, told, .. }) => {
            assert_eq!((shard, told), (ShardId(0), 2));
        }
        other => panic!("expected the shard's refusal, got {other:?}"),
    }

    // A write routed with the old map (the key still says shard 0) is refused there,
    // rerouted once after the map reload, and lands on shard 1.
    assert_eq!(stale.shard(), ShardId(0));
    let data = Document::parse(serde_json::json!({"name": "Grace"})).expect("a document");
    let started = Instant::now();
    let moved = cluster
        .write(&table, &stale, RecordId::parse("g1").unwrap(), data, None)
        .await
        .expect("the write is rerouted, not refused");
    assert_eq!(moved.shard, ShardId(1));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(cluster.map().version(), MapVersion(2));
    let read = cluster
        .read(
            &table,
            &stale,
            &RecordId::parse("g1").unwrap(),
            Consistency::Strong,
        )
        .await
        .expect("read after the move");
    assert_eq!(read.shard, ShardId(1));
    assert!(read.value.is_some());
}
