//! Exactly once per record for a bulk write sent with an `Idempotency-Key`: a shard
//! that was down when the batch was first sent missed its records; after it is back and
//! the missed records' slot moved to a shard that wrote its own part of the batch, the
//! retry writes exactly the missed records (wherever their slots now live, through the
//! gateway's second pass after the old owner's slot-not-owned refusal) and answers the
//! others as replayed.

use std::time::{Duration, Instant};

use reqwest::Response;
use serde_json::{json, Value};
use shard_manager::store::IdempotencyKey;
use shard_manager::ShardKey;
use test_app::{spawn_app, TestApp};
use test_support::outage::{serial, Node, Outage};

use crate::movers::{assert_done, move_id, mover_process};

async fn bulk(app: &TestApp, key: &str, batch: &Value) -> Response {
    app.post_json_request("/api/bulk-write", None, batch)
        .header("idempotency-key", key)
        .send()
        .await
        .expect("bulk write")
}

/// (version, data) of a strong read, or None for a 404.
async fn stored(app: &TestApp, key: &str, id: &str) -> Option<(i64, Value)> {
    let res = app.read_strong(key, "events", id).await;
    if res.status().as_u16() == 404 {
        return None;
    }
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    let version = body["record"]["version"].as_i64().unwrap();
    Some((version, body["record"]["data"].clone()))
}

fn key_on(app: &TestApp, shard: usize, prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|k| app.shard_of(k).index() == shard)
        .unwrap()
}

/// Waits until the gateway reaches shard `shard`'s primary again (its monitor marked
/// it down during the outage).
async fn reachable(app: &TestApp, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while app
        .read_strong(key, "events", "none")
        .await
        .status()
        .as_u16()
        != 404
    {
        assert!(Instant::now() < deadline, "the primary never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The records a bulk answer counts as written by an earlier request with its key.
fn written_before(answer: &Value) -> u64 {
    answer["shards"]
        .as_array()
        .expect("a bulk answer's shards")
        .iter()
        .map(|s| s["written_before"].as_u64().expect("written_before"))
        .sum()
}

#[tokio::test]
async fn a_bulk_retry_writes_the_records_a_stopped_shard_missed_after_their_slot_moved() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let settings = app.settings.cluster.clone();
    let (k0, k1) = (key_on(&app, 0, "once-a"), key_on(&app, 1, "once-b"));
    let slot = app
        .router()
        .route(ShardKey::parse(&k1).unwrap())
        .unwrap()
        .slot()
        .0;
    // The key's claim lives at its home slot: one on a shard that stays up.
    let key = (0..)
        .map(|i| format!("per-record-{i}"))
        .find(|k| {
            let home = IdempotencyKey::new("", k, &[], 60).home_key();
            app.shard_of(&home).index() != 1
        })
        .unwrap();
    let batch = json!({"table": "events", "records": [
        {"shard_key": k0, "id": "r0", "data": {"n": 0}},
        {"shard_key": k1, "id": "r1", "data": {"n": 1}},
    ]});

    let outage = Outage::begin(&[Node::Primary(1)]).await;
    let first = bulk(&app, &key, &batch).await;
    assert_eq!(first.status().as_u16(), 207);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["written"], 1, "{first}");
    outage.end().await;
    reachable(&app, &k1).await;
    let (v0, _) = stored(&app, &k0, "r0").await.expect("r0 written");
    assert_eq!(stored(&app, &k1, "r1").await, None);

    let moved = mover_process(
        &settings.database.dbname,
        &format!("startslots:1:0:{slot}"),
        None,
    )
    .await;
    assert!(moved.success, "{}", moved.output);
    assert_done(&settings, move_id(&moved.output)).await;

    let again = bulk(&app, &key, &batch).await;
    assert_eq!(again.status().as_u16(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["written"], 2, "{again}");
    assert_eq!(
        written_before(&again),
        1,
        "r0 counted, not written: {again}"
    );
    assert_eq!(again["failed"], json!([]));
    let (v1, data) = stored(&app, &k1, "r1")
        .await
        .expect("the missed record written");
    assert_eq!(data, json!({"n": 1}));
    assert_eq!(
        stored(&app, &k0, "r0").await.unwrap().0,
        v0,
        "r0 not written twice"
    );

    let third = bulk(&app, &key, &batch).await;
    assert_eq!(third.status().as_u16(), 200);
    assert!(third.headers().get("idempotency-replayed").is_some());
    let third: Value = third.json().await.unwrap();
    assert_eq!(written_before(&third), 2, "{third}");
    assert_eq!(stored(&app, &k0, "r0").await.unwrap().0, v0);
    assert_eq!(
        stored(&app, &k1, "r1").await.unwrap().0,
        v1,
        "r1 not written twice"
    );

    // r1's entry moves back with its slot: a retry after that still writes nothing.
    let back = mover_process(
        &settings.database.dbname,
        &format!("startslots:0:1:{slot}"),
        None,
    )
    .await;
    assert!(back.success, "{}", back.output);
    assert_done(&settings, move_id(&back.output)).await;
    let fourth = bulk(&app, &key, &batch).await;
    assert_eq!(fourth.status().as_u16(), 200);
    assert!(fourth.headers().get("idempotency-replayed").is_some());
    assert_eq!(stored(&app, &k0, "r0").await.unwrap().0, v0);
    assert_eq!(
        stored(&app, &k1, "r1").await.unwrap().0,
        v1,
        "written again after the move"
    );
}
