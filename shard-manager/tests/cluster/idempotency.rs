//! Writes sent with an idempotency key, replayed: the replay gets the first answer (same
//! id, version and timestamps) and writes nothing (the stored row keeps its version, one
//! entry holds the answer); the key sent with another request is refused, writing
//! nothing. A bulk write replayed is counted as written, by the first request.

use serde_json::{json, Value};
use shard_manager::store::IdempotencyKey;
use shard_manager::{BulkItem, ClusterError, ShardId};
use tokio_postgres::Client;

use crate::fixtures::{doc, id, key_on, rows, table};
use test_support::scratch::Scratch;

/// The idempotency key of a request described by `parts`, kept an hour.
fn idempotency_key(key: &str, parts: &[&str]) -> IdempotencyKey {
    let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_bytes()).collect();
    IdempotencyKey::new("", key, &parts, 3600)
}

/// How many rows of `table` on this server hold entries of the idempotency key `key`.
async fn entries(client: &Client, table: &str, key: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM {table} WHERE caller = '' AND key = $1");
    client.query_one(&sql, &[&key]).await.expect("count").get(0)
}

#[tokio::test]
async fn a_replayed_write_gets_the_first_answer_and_is_applied_once() {
    let scratch = Scratch::create().await;
    let cluster = scratch.cluster();
    let users = table(&cluster, "users");
    let shard = ShardId(0);
    let key = key_on(&cluster, shard, "erin");
    let primary = scratch.connect(&scratch.primary(shard)).await;
    let token = uuid::Uuid::new_v4().to_string();
    let body = json!({"name": "Erin"});
    let request = idempotency_key(
        &token,
        &["write", "users", key.as_str(), "u1", &body.to_string()],
    );

    let first = cluster
        .write(&users, &key, id("u1"), doc(body.clone()), Some(&request))
        .await
        .expect("first write");
    let replay = cluster
        .write(&users, &key, id("u1"), doc(body.clone()), Some(&request))
        .await
        .expect("replayed write");

    assert!(!first.replayed && replay.replayed);
    assert_eq!(replay.shard, first.shard);
    assert_eq!(replay.id, first.id);
    assert_eq!(replay.upserted, first.upserted, "the first answer, whole");
    assert!(replay.token.lsn >= first.token.lsn);
    assert_eq!(
        rows(&primary, "users", key.as_str()).await,
        vec![("u1".to_string(), first.upserted.version, body.clone())]
    );
    assert_eq!(entries(&primary, "shardgate_idempotency", &token).await, 1);
    let mut claims = 0;
    for s in 0..3 {
        let client = scratch.connect(&scratch.primary(ShardId(s))).await;
        claims += entries(&client, "shardgate_idempotency_claims", &token).await;
    }
    assert_eq!(claims, 1, "one claim of the key, at its home");

    let other = idempotency_key(&token, &["write", "users", key.as_str(), "u1", "{}"]);
    let reused = cluster
        .write(
            &users,
            &key,
            id("u1"),
            doc(json!({"name": "Mallory"})),
            Some(&other),
        )
        .await
        .expect_err("the key with another request");
    assert!(
        matches!(reused, ClusterError::KeyReused { .. }),
        "{reused:?}"
    );
    assert_eq!(
        rows(&primary, "users", key.as_str()).await,
        vec![("u1".to_string(), first.upserted.version, body)],
        "the refused request wrote nothing"
    );
}

#[tokio::test]
async fn a_replayed_bulk_write_is_counted_as_written_by_the_first() {
    let scratch = Scratch::create().await;
    let cluster = scratch.cluster();
    let events = table(&cluster, "events");
    let keys: Vec<_> = (0..3)
        .map(|s| key_on(&cluster, ShardId(s), "frank"))
        .collect();
    let items: Vec<BulkItem> = keys
        .iter()
        .enumerate()
        .map(|(index, key)| BulkItem {
            index,
            key: key.clone(),
            id: id("e1"),
            data: doc(json!({"n": index})),
        })
        .collect();
    let token = uuid::Uuid::new_v4().to_string();
    let request = idempotency_key(&token, &["bulk", "events", "frank-batch"]);

    let first = cluster
        .bulk_write(&events, items.clone(), Some(&request))
        .await
        .expect("first bulk write");
    let versions = stored_versions(&scratch, &keys).await;
    let replay = cluster
        .bulk_write(&events, items, Some(&request))
        .await
        .expect("replayed bulk write");

    assert_eq!((first.written(), replay.written()), (3, 3));
    assert!(first.failed.is_empty() && replay.failed.is_empty());
    assert!(first
        .shards
        .iter()
        .all(|b| !b.replayed && b.error.is_none()));
    assert!(replay
        .shards
        .iter()
        .all(|b| b.replayed && b.error.is_none()));
    assert_eq!(
        stored_versions(&scratch, &keys).await,
        versions,
        "written once"
    );
    for (s, key) in keys.iter().enumerate() {
        let primary = scratch.connect(&scratch.primary(ShardId(s as u32))).await;
        let per_record = "shardgate_idempotency_records";
        assert_eq!(entries(&primary, per_record, &token).await, 1, "{key}");
    }
}

/// (version, data) of each key's record `e1`, shard by shard.
async fn stored_versions(
    scratch: &Scratch,
    keys: &[shard_manager::RoutedKey],
) -> Vec<Vec<(String, i64, Value)>> {
    let mut all = Vec::new();
    for (s, key) in keys.iter().enumerate() {
        let primary = scratch.connect(&scratch.primary(ShardId(s as u32))).await;
        all.push(rows(&primary, "events", key.as_str()).await);
    }
    all
}
