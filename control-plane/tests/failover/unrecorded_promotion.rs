//! A promotion the map cannot record: the pair's replica is promoted while its old
//! primary still runs and takes writes (asynchronous replication, so nothing hangs),
//! and the metadata database is gone, so no gateway can record the new primary. The
//! watcher sees the replica take writes on a newer timeline; from then on every write
//! to the shard is refused at once, before it is sent, naming the server that took
//! over, and nothing more lands on the old primary, where it would be lost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shard_manager::{ClusterError, RecordId, ShardKey};
use test_support::failover::harness::{self, Following, Scratch};
use test_support::failover::workload::doc;
use test_support::private::pair::{Pair, Replication};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_stop_at_once_when_a_promotion_cannot_be_recorded() {
    let _alone = harness::ONE_AT_A_TIME.lock().await;
    let mut settings = harness::settings();
    // A refused write waits this long for the map to name the new primary.
    settings.failover.write_wait_ms = 500;
    let (user, name) = (
        settings.database.user.clone(),
        settings.database.dbname.clone(),
    );
    let pair = Arc::new(Pair::start(&user, &name));
    pair.set_replication(Replication::Async);
    settings.shards[0].primary = pair.primary();
    settings.shards[0].replicas = vec![pair.replica()];
    let scratch = Scratch(settings.clone());
    let init = harness::seed(&settings, &pair.primary()).await;
    let following = Following::start(&settings, &init);
    let cluster = following.cluster.clone();
    let table = cluster.tables().parse("users").expect("users");
    let write = |id: String| {
        let cluster = cluster.clone();
        let table = table.clone();
        async move {
            let key = cluster
                .router()
                .route(ShardKey::parse(&id).unwrap())
                .unwrap();
            cluster
                .write(&table, &key, RecordId::parse(&id).unwrap(), doc(1), None)
                .await
        }
    };
    write("before".into()).await.expect("a write before");

    // No map to record in: the metadata scratch database is dropped.
    drop(scratch);
    let p = pair.clone();
    tokio::task::spawn_blocking(move || p.promote_replica())
        .await
        .unwrap();
    let promoted = Instant::now();

    // Until the watcher has seen it, writes still land on the old primary; then they
    // are refused, before anything is sent.
    let mut n = 0;
    let reason = loop {
        n += 1;
        match write(format!("during-{n}")).await {
            Err(ClusterError::Unavailable {
                reason,
                maybe_committed: false,
                ..
            }) if reason.contains("took over") => break reason,
            other => assert!(
                promoted.elapsed() < Duration::from_secs(15),
                "writes still go to the old primary {:?} after the promotion: {other:?}",
                promoted.elapsed()
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "refused {:?} after the promotion: {reason}",
        promoted.elapsed()
    );
    assert!(reason.contains(&pair.replica()), "{reason}");
    for i in 0..5 {
        let refused = write(format!("after-{i}")).await;
        assert!(
            matches!(refused, Err(ClusterError::Unavailable { .. })),
            "{refused:?}"
        );
    }
    let on_old = pair.query(
        pair.primary_port,
        &name,
        "SELECT count(*) FROM records WHERE id LIKE 'after-%'",
    );
    assert_eq!(on_old, "0", "nothing refused reached the old primary");
}
