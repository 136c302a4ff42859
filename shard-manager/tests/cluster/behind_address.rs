//! A primary behind a service address (`follow = "address"`) and its floor, on the
//! shared primary (its address leads to it, as a `-rw` address leads to the primary):
//! each new connection is judged as it opens and tagged with the timeline it reached;
//! with the floor above that timeline (as after a promotion behind the address), no
//! connection to it carries a write, and nothing is written; a commit answered from a
//! superseded timeline is not acknowledged (it may have committed), and a retry with
//! the write's key is applied once.

use serde_json::json;
use shard_manager::config::ShardFollows;
#[cfg(feature = "faults")]
use shard_manager::store::IdempotencyKey;
use shard_manager::{ClusterError, ShardId};

#[cfg(feature = "faults")]
use crate::fixtures::route;
use crate::fixtures::{doc, id, key_on, rows, table};
use test_support::scratch::Scratch;

/// Shard 0 behind an address: the shared primary's own.
async fn scratch() -> Scratch {
    Scratch::create_with(|s| {
        s.shards[0].follow = ShardFollows::Address;
        // What a write waits for a primary that takes it, here and there.
        s.failover.write_wait_ms = 600;
    })
    .await
}

/// The timeline the server writes on, read directly.
async fn timeline(client: &tokio_postgres::Client) -> u32 {
    let hex: String = client
        .query_one(
            "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)",
            &[],
        )
        .await
        .expect("the timeline")
        .get(0);
    u32::from_str_radix(&hex, 16).expect("hex")
}

#[tokio::test]
async fn connections_below_the_floor_carry_no_write() {
    let scratch = scratch().await;
    let cluster = scratch.cluster();
    let users = table(&cluster, "users");
    let shard = ShardId(0);
    let key = key_on(&cluster, shard, "floor");
    let direct = scratch.connect(&scratch.primary(shard)).await;
    let on = timeline(&direct).await;

    let written = cluster
        .write(&users, &key, id("f1"), doc(json!({"n": 1})), None)
        .await
        .expect("a write through the address");
    let primary = cluster.shard(shard).expect("shard 0").primary.clone();
    let behind = primary.behind.clone().expect("a primary behind an address");
    let (seen, _) = behind.last_seen().expect("its connection was judged");
    assert_eq!(seen.identity.timeline, on);
    assert_eq!(
        seen.identity.node.as_deref(),
        Some(scratch.primary(shard).as_str()),
        "the node reached behind the address"
    );
    assert_eq!(seen.identity.shard, Some(0), "the shard it was told it is");
    assert!(seen.writable());
    assert_eq!(behind.floor(), on, "the floor rose to the timeline reached");

    // A promotion behind the address is learnt: the floor is above every connection.
    behind.raise_floor(on + 1);
    let refused = cluster
        .write(&users, &key, id("f2"), doc(json!({"n": 2})), None)
        .await
        .expect_err("no connection to the old timeline carries a write");
    match &refused {
        ClusterError::Unavailable {
            reason,
            maybe_committed,
            ..
        } => {
            assert!(!maybe_committed, "nothing was sent: {refused:?}");
            assert!(
                reason.contains(&format!(
                    "an old primary on timeline {on}: the primary writes on timeline {} or later",
                    on + 1
                )),
                "{reason}"
            );
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert_eq!(
        rows(&direct, "users", key.as_str()).await,
        vec![("f1".to_string(), written.upserted.version, json!({"n": 1}))],
        "f2 was never written"
    );
}

#[cfg(feature = "faults")]
#[tokio::test]
async fn a_commit_from_a_superseded_timeline_is_not_acknowledged_and_a_keyed_retry_applies_once() {
    let scratch = scratch().await;
    let cluster = scratch.cluster();
    let users = table(&cluster, "users");
    let shard = ShardId(0);
    let key = key_on(&cluster, shard, "superseded");
    let direct = scratch.connect(&scratch.primary(shard)).await;
    let body = json!({"name": "Ada"});
    // A key whose claim is kept on another shard (its home slot's): the fault is for
    // the write's own commit, not for the claim's.
    let run = uuid::Uuid::new_v4();
    let request = (0..1000)
        .map(|n| {
            IdempotencyKey::new(
                "",
                &format!("{run}-{n}"),
                &[
                    b"write".as_slice(),
                    b"users",
                    key.as_str().as_bytes(),
                    b"s1",
                    body.to_string().as_bytes(),
                ],
                3600,
            )
        })
        .find(|k| route(&cluster, &k.home_key()).shard() != shard)
        .expect("a key whose home is on another shard");
    let primary = cluster.shard(shard).expect("shard 0").primary.clone();
    primary.faults.new_timeline_after_commit(1);

    let lost = cluster
        .write(&users, &key, id("s1"), doc(body.clone()), Some(&request))
        .await
        .expect_err("committed on a timeline the primary has left");
    match &lost {
        ClusterError::Unavailable {
            reason,
            maybe_committed,
            ..
        } => {
            assert!(maybe_committed, "{lost:?}");
            assert!(
                reason.contains("it may not survive the failover"),
                "{reason}"
            );
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    let stored = rows(&direct, "users", key.as_str()).await;
    assert_eq!(stored.len(), 1, "it did commit: {stored:?}");

    // The client retries with its key, through a gateway whose floor is the primary's.
    let other = scratch.cluster();
    let retried = other
        .write(&users, &key, id("s1"), doc(body.clone()), Some(&request))
        .await
        .expect("the keyed retry");
    assert!(retried.replayed, "answered from the first commit");
    assert_eq!(retried.upserted.version, stored[0].1);
    assert_eq!(
        rows(&direct, "users", key.as_str()).await,
        stored,
        "applied once"
    );
}
