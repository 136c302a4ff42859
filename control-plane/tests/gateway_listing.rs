//! A gateway is listed among the gateways, with the cache prefix it reads under, as soon
//! as its follower first reaches the metadata database, even while no map is stored
//! there yet: a mover reads that list to tell every cache of a retired epoch, and the
//! first move of a fresh cluster is the one that stores the first map.
//!
//! Against the metadata server `./setup.sh up` starts, in a scratch database of its own
//! (dropped at the end): `cargo test -p control-plane --test gateway_listing`, with the
//! environment of `eval "$(./setup.sh env)"`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use control_plane::map::{gateways, meta, schema, Follower, Identity};
use shard_manager::{config, Cluster, ClusterSettings};
use test_support::maintenance::maintenance;
use test_support::scratch::MetaScratch;

fn settings() -> ClusterSettings {
    let mut settings: ClusterSettings = config::load(None).expect("settings");
    settings.metadata.dbname = format!("sgtest_listing_{}", uuid::Uuid::new_v4().simple());
    settings.metadata.heartbeat_ms = 100;
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_is_listed_with_its_cache_prefix_before_any_map_is_stored() {
    let settings = settings();
    let _scratch = MetaScratch(settings.clone());
    maintenance(
        &settings,
        &settings.metadata.address,
        &format!("CREATE DATABASE {}", settings.metadata.dbname),
    )
    .await;
    let mut conn = meta::connect(&settings).await.expect("the metadata server");
    schema::apply(&mut conn.client).await.expect("the schema");
    assert_eq!(
        meta::version(&conn.client).await.expect("read"),
        None,
        "no map is stored"
    );

    // A gateway routing with its configuration's map, its cache on.
    let cluster = Cluster::new(settings.clone()).expect("cluster");
    let mut cache = settings.cache.clone();
    cache.enabled = true;
    cache.prefix = "sgtest-listing".into();
    let me = Identity::new("test:1".into()).with_cache(&cache);
    let told = Arc::new(AtomicUsize::new(0));
    let counted = told.clone();
    let _follower = Follower::spawn_telling(
        cluster.map().clone(),
        me,
        Box::new(move |_| {
            counted.fetch_add(1, Ordering::Relaxed);
        }),
    );

    let start = Instant::now();
    let prefixes = loop {
        let prefixes = gateways::cache_prefixes(&conn.client).await.expect("read");
        if !prefixes.is_empty() || start.elapsed() > Duration::from_secs(10) {
            break prefixes;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(prefixes, vec!["sgtest-listing".to_string()]);
    assert!(
        told.load(Ordering::Relaxed) >= 1,
        "the cache was told it is listed"
    );
    assert_eq!(
        meta::version(&conn.client).await.expect("read"),
        None,
        "still no map: the listing did not wait for one"
    );
}
