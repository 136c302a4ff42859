//! The fence a restore point takes: while the metadata database's fence lock is held
//! exclusive (as `backup::point` holds it), a transaction's decision write waits, and
//! it is written once the lock is released.

use std::sync::Arc;
use std::time::Duration;

use control_plane::map::meta;
use control_plane::txn::log::DECISION_FENCE_LOCK;
use control_plane::txn::MetaLog;
use shard_manager::cluster::txn::log::{Decision, DecisionLog};
use shard_manager::routing::ShardId;

use crate::private::Private;
use crate::{Cli, SHARD_ADMIN};

#[test]
fn a_decision_write_waits_while_a_point_is_being_named() {
    let server = Private::start();
    let cli = Cli::for_server(SHARD_ADMIN, &server);
    let settings = cli.settings(&server);
    crate::prepare(&server, &settings);
    let decided = |txid: &str| {
        server.query(
            "shardgate_meta",
            &format!("SELECT count(*) FROM txn_log WHERE txid = '{txid}'"),
        )
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let log = Arc::new(MetaLog::new(settings.clone()));
    let shards = [ShardId(0), ShardId(1)];
    let first = rt.block_on(log.settle("before", Decision::Commit, &shards));
    assert_eq!(first.expect("a decision without a fence"), Decision::Commit);

    let fence = rt
        .block_on(meta::connect(&settings))
        .expect("a metadata connection");
    rt.block_on(
        fence
            .client
            .execute("SELECT pg_advisory_lock($1)", &[&DECISION_FENCE_LOCK]),
    )
    .expect("the fence");
    let waiting = {
        let log = log.clone();
        rt.spawn(async move { log.settle("during", Decision::Commit, &shards).await })
    };
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        !waiting.is_finished(),
        "a decision was written through the fence"
    );
    assert_eq!(decided("during"), "0");
    rt.block_on(
        fence
            .client
            .execute("SELECT pg_advisory_unlock($1)", &[&DECISION_FENCE_LOCK]),
    )
    .expect("the fence lifted");
    let after = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(3), waiting).await })
        .expect("the decision after the fence")
        .expect("its task");
    assert_eq!(after.expect("the decision"), Decision::Commit);
    assert_eq!(decided("during"), "1");
}
