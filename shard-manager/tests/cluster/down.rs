//! A primary that is not there: a port nothing listens on, or a socket that accepts and
//! never answers. Work for its shard answers `ClusterError::Unavailable` naming the shard
//! and the server, within the connect timeout, not after hanging; the other shards go on
//! serving, in the same bulk write too.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::json;
use shard_manager::{BulkItem, Cluster, ClusterError, Role, ShardId};

use crate::fixtures::{doc, id, key_on, table};
use test_support::scratch::Scratch;

/// Short enough to show the bound, long enough for the live shards' connect and login
/// on a loaded 2-core machine (300 ms once failed the live shard of the bulk write).
const CONNECT_TIMEOUT_MS: u64 = 1000;

/// The scratch cluster, with `shard`'s primary at `addr` instead.
fn with_primary_at(scratch: &Scratch, shard: ShardId, addr: &str) -> Cluster {
    let mut settings = scratch.settings.clone();
    settings.shards[shard.index()].primary = addr.to_owned();
    Cluster::new(settings).expect("a cluster")
}

fn assert_unavailable(err: &ClusterError, shard: ShardId, addr: &str) {
    match err {
        ClusterError::Unavailable {
            shard: s,
            role,
            server,
            ..
        } => assert_eq!((*s, *role, server.as_str()), (shard, Role::Primary, addr)),
        other => panic!("expected {shard} unavailable, got {other:?}"),
    }
}

/// A local port nothing listens on (bound once by the system, then let go).
fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = listener.local_addr().expect("its address");
    drop(listener);
    addr.to_string()
}

#[tokio::test]
async fn a_primary_on_a_wrong_port_is_unavailable_by_name_and_the_others_serve() {
    let scratch =
        Scratch::create_with(|s| s.database.connect_timeout_ms = CONNECT_TIMEOUT_MS).await;
    let down = ShardId(1);
    let addr = closed_port();
    let cluster = with_primary_at(&scratch, down, &addr);
    let users = table(&cluster, "users");
    let key = key_on(&cluster, down, "heidi");

    let started = Instant::now();
    let err = cluster
        .write(&users, &key, id("u1"), doc(json!({"n": 1})), None)
        .await
        .expect_err("a write to a primary that is not there");
    assert_unavailable(&err, down, &addr);
    assert!(err.is_unavailable());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    let up = key_on(&cluster, ShardId(0), "heidi");
    let items = [(0, &key), (1, &up)].map(|(index, key)| BulkItem {
        index,
        key: key.clone(),
        id: id("u2"),
        data: doc(json!({"n": index})),
    });
    let outcome = cluster
        .bulk_write(&users, items.to_vec(), None)
        .await
        .expect("a bulk write's outcome");
    assert_eq!(outcome.written(), 1);
    let failed: Vec<usize> = outcome.failed.iter().map(|f| f.index).collect();
    assert_eq!(failed, [0]);
    let batch = |s| {
        outcome
            .shards
            .iter()
            .find(|b| b.shard == s)
            .expect("a batch")
    };
    assert_eq!(batch(ShardId(0)).written, 1);
    let error = batch(down).error.as_ref().expect("the down shard's error");
    assert_unavailable(error, down, &addr);
}

#[tokio::test]
async fn a_primary_that_never_answers_is_unavailable_within_the_connect_timeout() {
    let scratch =
        Scratch::create_with(|s| s.database.connect_timeout_ms = CONNECT_TIMEOUT_MS).await;
    // Connections complete in the backlog; nothing ever reads or answers them.
    let silent = TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = silent.local_addr().expect("its address").to_string();
    let down = ShardId(2);
    let cluster = with_primary_at(&scratch, down, &addr);
    let orders = table(&cluster, "orders");
    let key = key_on(&cluster, down, "ivan");

    let started = Instant::now();
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        cluster.write(&orders, &key, id("o1"), doc(json!({"n": 1})), None),
    )
    .await
    .expect("the write hung")
    .expect_err("a write to a primary that never answers");
    let took = started.elapsed();
    assert_unavailable(&err, down, &addr);
    assert!(
        took >= Duration::from_millis(CONNECT_TIMEOUT_MS) && took < Duration::from_secs(3),
        "answered after {took:?}, the connect timeout is {CONNECT_TIMEOUT_MS} ms"
    );
    drop(silent);
}
