//! A bulk write through `Cluster`: records of keys on every shard, one group per shard,
//! each committed on its primary with a token of its own; a later record with the same
//! key and id supersedes an earlier one, which is reported and never written.

use serde_json::json;
use shard_manager::{BulkItem, ShardId};

use crate::fixtures::{doc, id, key_on, rows, table, wal_now};
use test_support::scratch::Scratch;

#[tokio::test]
async fn a_batch_is_written_on_every_shard_its_keys_live_on() {
    let scratch = Scratch::create().await;
    let cluster = scratch.cluster();
    let products = table(&cluster, "products");
    let keys: Vec<_> = (0..3)
        .map(|s| key_on(&cluster, ShardId(s), "bulk"))
        .collect();
    let item = |index: usize, shard: usize, record: &str, n: u32| BulkItem {
        index,
        key: keys[shard].clone(),
        id: id(record),
        data: doc(json!({"n": n})),
    };
    let items = vec![
        item(0, 0, "p1", 0),
        item(1, 1, "p1", 1),
        item(2, 2, "p1", 2),
        item(3, 2, "p2", 3),
        // Supersedes record 0: only this one of the two is written.
        item(4, 0, "p1", 4),
        item(5, 0, "p3", 5),
    ];
    let mut before = Vec::new();
    for s in 0..3 {
        let primary = scratch.connect(&scratch.primary(ShardId(s))).await;
        before.push(wal_now(&primary).await);
    }

    let outcome = cluster
        .bulk_write(&products, items, None)
        .await
        .expect("bulk write");

    assert_eq!(outcome.written(), 5);
    assert_eq!(outcome.failed.len(), 1, "{:?}", outcome.failed);
    assert_eq!(outcome.failed[0].index, 0);
    let shards: Vec<(ShardId, usize)> = outcome
        .shards
        .iter()
        .map(|b| (b.shard, b.written))
        .collect();
    assert_eq!(shards, [(ShardId(0), 2), (ShardId(1), 1), (ShardId(2), 2)]);
    for (s, batch) in outcome.shards.iter().enumerate() {
        assert!(batch.error.is_none(), "{:?}", batch.error);
        assert!(!batch.replayed);
        let token = batch.token.expect("a token per shard");
        assert_eq!(token.shard, ShardId(s as u32));
        assert!(
            token.lsn > before[s],
            "{} did not move past {}",
            token.lsn,
            before[s]
        );
    }

    let (scratch, keys) = (&scratch, &keys);
    let stored = |s: u32| async move {
        let primary = scratch.connect(&scratch.primary(ShardId(s))).await;
        rows(&primary, "products", keys[s as usize].as_str())
            .await
            .into_iter()
            .map(|(id, _, data)| (id, data))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        stored(0).await,
        [
            ("p1".to_string(), json!({"n": 4})),
            ("p3".to_string(), json!({"n": 5}))
        ]
    );
    assert_eq!(stored(1).await, [("p1".to_string(), json!({"n": 1}))]);
    assert_eq!(
        stored(2).await,
        [
            ("p1".to_string(), json!({"n": 2})),
            ("p2".to_string(), json!({"n": 3}))
        ]
    );
}
