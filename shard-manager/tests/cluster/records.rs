//! One record through `Cluster`: written on its shard's primary with the position of its
//! commit, read back from the primary, then from a replica that has replayed that
//! position (read-your-writes), and deleted.

use serde_json::json;
use shard_manager::{Consistency, Role, ShardId};

use crate::fixtures::{doc, id, key_on, rows, stored, table, wal_now};
use crate::monitor::check_replicas;
use test_support::scratch::Scratch;

#[tokio::test]
async fn a_write_reads_back_from_the_primary_then_from_a_replica_that_replayed_it() {
    // A replica gets a second to replay the write before the read falls back to the
    // primary: a fallback here means replication stopped, not a slow machine.
    let scratch = Scratch::create_with(|s| s.replication.ryw_wait_ms = 1000).await;
    let cluster = scratch.cluster();
    let users = table(&cluster, "users");
    let shard = ShardId(1);
    let key = key_on(&cluster, shard, "alice");
    let primary = scratch.connect(&scratch.primary(shard)).await;

    let before = wal_now(&primary).await;
    let first = cluster
        .write(
            &users,
            &key,
            id("u1"),
            doc(json!({"name": "Alice", "n": 1})),
            None,
        )
        .await
        .expect("first write");
    let after = wal_now(&primary).await;
    assert_eq!(first.shard, shard);
    assert_eq!(first.id.as_str(), "u1");
    assert!(first.upserted.created && !first.replayed);
    assert_eq!(first.token.shard, shard);
    assert!(
        before < first.token.lsn && first.token.lsn <= after,
        "the token {} is the commit's position, between {before} and {after}",
        first.token.lsn
    );
    assert_eq!(
        rows(&primary, "users", key.as_str()).await,
        vec![(
            "u1".to_string(),
            first.upserted.version,
            json!({"name": "Alice", "n": 1})
        )]
    );

    let read = cluster
        .read(&users, &key, &id("u1"), Consistency::Strong)
        .await
        .expect("strong read");
    assert_eq!((read.shard, read.role), (shard, Role::Primary));
    assert_eq!(read.server, scratch.primary(shard));
    let record = stored(read);
    assert_eq!(record.version, first.upserted.version);
    assert_eq!(record.slot, key.slot().0 as i32);
    assert_eq!(record.data.to_value(), json!({"name": "Alice", "n": 1}));

    let second = cluster
        .write(
            &users,
            &key,
            id("u1"),
            doc(json!({"name": "Alice", "n": 2})),
            None,
        )
        .await
        .expect("second write");
    assert!(!second.upserted.created);
    assert!(second.upserted.version > first.upserted.version);
    assert!(second.token.lsn > first.token.lsn);
    assert_eq!(second.upserted.created_at, first.upserted.created_at);

    check_replicas(&cluster).await;
    let consistency = Consistency::ReadYourWrites(second.token.lsn);
    let read = cluster
        .read(&users, &key, &id("u1"), consistency)
        .await
        .expect("read-your-writes read");
    assert_eq!((read.shard, read.role), (shard, Role::Replica));
    assert_eq!(read.server, scratch.replica(shard));
    assert!(
        read.seen_at >= second.token.lsn,
        "{} < {}",
        read.seen_at,
        second.token.lsn
    );
    let record = stored(read);
    assert_eq!(record.version, second.upserted.version);
    assert_eq!(record.data.to_value(), json!({"name": "Alice", "n": 2}));
}

#[tokio::test]
async fn a_delete_removes_the_record_once_and_says_whether_it_existed() {
    let scratch = Scratch::create().await;
    let cluster = scratch.cluster();
    let orders = table(&cluster, "orders");
    let shard = ShardId(2);
    let key = key_on(&cluster, shard, "bob");
    let primary = scratch.connect(&scratch.primary(shard)).await;
    let kept = cluster
        .write(&orders, &key, id("kept"), doc(json!({"total": 3})), None)
        .await
        .expect("write kept");
    let gone = cluster
        .write(&orders, &key, id("gone"), doc(json!({"total": 5})), None)
        .await
        .expect("write gone");

    let deleted = cluster
        .delete(&orders, &key, &id("gone"), None)
        .await
        .expect("delete");
    assert_eq!((deleted.shard, deleted.role), (shard, Role::Primary));
    assert!(deleted.value.existed && !deleted.value.replayed);
    assert_eq!(deleted.value.token.shard, shard);
    assert!(deleted.value.token.lsn > gone.token.lsn);
    assert_eq!(
        rows(&primary, "orders", key.as_str()).await,
        vec![(
            "kept".to_string(),
            kept.upserted.version,
            json!({"total": 3})
        )]
    );
    let read = cluster
        .read(&orders, &key, &id("gone"), Consistency::Strong)
        .await
        .expect("read after delete");
    assert!(read.value.is_none(), "the deleted record was read back");

    let again = cluster
        .delete(&orders, &key, &id("gone"), None)
        .await
        .expect("delete again");
    assert!(!again.value.existed, "a second delete found the record");
    assert_eq!(rows(&primary, "orders", key.as_str()).await.len(), 1);
}
