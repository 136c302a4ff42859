//! A promotion nobody recorded, followed by an admin command: the pair's primary is
//! killed and its replica promoted by hand while no gateway runs (no watcher), as a
//! cluster brought back by `./setup.sh up` after its HA manager replaced a primary.
//! `failover::reconcile::once` (run by `shard-admin migrate` and `init` first) finds
//! it, records it as a gateway would (map v2, the replica primary, term 2, a `failover`
//! history line), and a second call finds nothing to do. While the shard is healthy it
//! records nothing.

use std::sync::Arc;

use control_plane::failover::reconcile;
use control_plane::map::{change, meta};
use shard_manager::MapVersion;
use test_support::failover::harness::{self, Scratch};
use test_support::private::pair::Pair;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_command_records_a_promotion_no_gateway_saw() {
    let _alone = harness::ONE_AT_A_TIME.lock().await;
    let mut settings = harness::settings();
    let (user, name) = (
        settings.database.user.clone(),
        settings.database.dbname.clone(),
    );
    let pair = Arc::new(Pair::start(&user, &name));
    settings.shards[0].primary = pair.primary();
    settings.shards[0].replicas = vec![pair.replica()];
    let _scratch = Scratch(settings.clone());
    let init = harness::seed(&settings, &pair.primary()).await;
    assert_eq!(init.version, MapVersion(1));

    let healthy = reconcile::once(&settings).await.expect("a healthy shard");
    assert!(healthy.is_empty(), "nothing to follow: {healthy:?}");

    let p = pair.clone();
    tokio::task::spawn_blocking(move || {
        p.kill_primary();
        p.promote_replica();
    })
    .await
    .unwrap();
    let followed = reconcile::once(&settings).await.expect("the promotion");
    assert_eq!(followed.len(), 1, "{followed:?}");
    let f = &followed[0];
    assert_eq!(
        (f.from.as_str(), f.to.as_str(), f.term),
        (pair.primary().as_str(), pair.replica().as_str(), 2)
    );
    eprintln!("{f}");

    let map = change::current(&settings).await.expect("the map");
    assert_eq!(map.version, MapVersion(2));
    assert_eq!(map.shards[0].primary, pair.replica());
    assert_eq!(map.shards[0].replicas, vec![pair.primary()]);
    assert_eq!(map.shards[0].term, 2);
    let conn = meta::connect(&settings)
        .await
        .expect("the metadata database");
    let newest = &meta::history_lines(&conn.client, 1).await.expect("history")[0];
    assert_eq!((newest.version, newest.action.as_str()), (2, "failover"));
    assert!(
        newest
            .summary
            .contains(&format!("from {} to {}", pair.primary(), pair.replica())),
        "{newest:?}"
    );

    let again = reconcile::once(&settings).await.expect("a second call");
    assert!(again.is_empty(), "recorded twice: {again:?}");
    let map = change::current(&settings).await.expect("the map");
    assert_eq!(map.version, MapVersion(2), "a second call changed the map");
}
