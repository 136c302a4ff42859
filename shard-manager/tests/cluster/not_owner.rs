//! A shard that is told it owns no slot refuses every key routed to it (SQLSTATE SG001)
//! on writes and reads alike; with no newer map to reload (no metadata database is
//! followed here), the request answers `ClusterError::NotOwner` naming the shard, its
//! primary, the slot and the map version the shard goes by, after one bounded reload,
//! and nothing is written.

use std::time::{Duration, Instant};

use serde_json::json;
use shard_manager::{ClusterError, Consistency, ShardId};

use crate::fixtures::{doc, id, key_on, route, rows, table};
use test_support::scratch::{Scratch, TOLD_AT};

/// Asserts `err` is the shard's refusal of `slot`, named as the test expects.
fn assert_refused(err: &ClusterError, shard: ShardId, server: &str, slot: u32, told: u64) {
    match err {
        ClusterError::NotOwner {
            shard: s,
            server: at,
            slots,
            told: version,
        } => {
            assert_eq!((*s, at.as_str()), (shard, server));
            assert_eq!(slots, &slot.to_string());
            assert_eq!(*version, told);
        }
        other => panic!("expected the shard's refusal, got {other:?}"),
    }
    assert_eq!(err.sqlstate(), Some("SG001"));
    assert_eq!(err.refused_at().map(|v| v.0), Some(told));
}

#[tokio::test]
async fn a_shard_that_owns_nothing_refuses_the_slot_naming_itself_and_its_map_version() {
    let scratch = Scratch::create().await;
    let cluster = scratch.cluster();
    let users = table(&cluster, "users");
    let shard = ShardId(2);
    let key = key_on(&cluster, shard, "grace");
    let elsewhere = key_on(&cluster, ShardId(0), "grace");
    let told = TOLD_AT + 1;
    scratch.tell(shard, &[], told).await;
    let primary = scratch.primary(shard);
    let slot = key.slot().0;

    let started = Instant::now();
    let refused = cluster
        .write(&users, &key, id("u1"), doc(json!({"n": 1})), None)
        .await
        .expect_err("a write to a shard that owns nothing");
    assert_refused(&refused, shard, &primary, slot, told as u64);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the refusal took {:?}: the reload is bounded",
        started.elapsed()
    );
    let client = scratch.connect(&primary).await;
    assert!(rows(&client, "users", key.as_str()).await.is_empty());

    let refused = cluster
        .read(&users, &key, &id("u1"), Consistency::Strong)
        .await
        .expect_err("a read from a shard that owns nothing");
    assert_refused(&refused, shard, &primary, slot, told as u64);

    // The map was not changed by the refusals, and the other shards serve as before.
    assert_eq!(cluster.map().version().0, 0);
    assert_eq!(route(&cluster, key.as_str()).shard(), shard);
    let written = cluster
        .write(&users, &elsewhere, id("u1"), doc(json!({"n": 2})), None)
        .await
        .expect("a shard that owns its slots");
    assert_eq!(written.shard, ShardId(0));
}
