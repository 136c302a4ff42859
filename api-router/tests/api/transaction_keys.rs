//! Transactions with an `Idempotency-Key` (sent again: applied once, answered alike;
//! the key with another body: refused), `"atomic": true` on `/api/bulk-write` (the same
//! path, all or nothing), and the transactions in `/metrics`.

use serde_json::{json, Value};
use test_app::{assert_problem, TestApp};

use crate::transaction::{balance, prepared, spawn, two_shards, upsert};

const KEY: &str = "idempotency-key";
const REPLAYED: &str = "idempotency-replayed";

async fn txn_with_key(app: &TestApp, key: &str, ops: Vec<Value>) -> reqwest::Response {
    app.post_json_request("/api/transaction", None, &json!({ "operations": ops }))
        .header(KEY, key)
        .send()
        .await
        .expect("transaction")
}

fn replayed(res: &reqwest::Response) -> bool {
    res.headers().get(REPLAYED).map(|v| v.as_bytes()) == Some(b"true")
}

#[tokio::test]
async fn a_transaction_sent_again_with_its_key_is_applied_once() {
    let app = spawn().await;
    let (a, b) = two_shards(&app);
    let open = vec![upsert(&a, 100, Some(0)), upsert(&b, 0, Some(0))];
    let first = txn_with_key(&app, "open-1", open.clone()).await;
    assert_eq!(first.status(), 200);
    assert!(!replayed(&first));
    let first: Value = first.json().await.unwrap();
    let (va, vb) = (
        first["results"][0]["version"].as_i64().unwrap(),
        first["results"][1]["version"].as_i64().unwrap(),
    );

    // The same transaction again: its conditions no longer hold, yet it is answered
    // as the first time, from the entries its parts kept, and nothing is written.
    let again = txn_with_key(&app, "open-1", open.clone()).await;
    assert_eq!(again.status(), 200);
    assert!(replayed(&again), "marked as a replay");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["results"], first["results"], "{again}");
    assert_eq!(again["protocol"], "two-phase");
    assert_eq!(again["shards"].as_array().unwrap().len(), 2);
    assert_eq!(balance(&app, &a).await, Some((100, va)));
    assert_eq!(balance(&app, &b).await, Some((0, vb)));

    // The key with another transaction: refused, nothing written.
    let other = txn_with_key(
        &app,
        "open-1",
        vec![upsert(&a, 1, None), upsert(&b, 2, None)],
    )
    .await;
    let problem = assert_problem(other, 422).await;
    assert_eq!(
        problem["type"],
        "urn:shardgate:problem:idempotency-key-reused"
    );
    assert_eq!(balance(&app, &a).await, Some((100, va)));

    // A transfer with a new key, then sent again: moved once.
    let transfer = vec![upsert(&a, 90, Some(va)), upsert(&b, 10, Some(vb))];
    let moved = txn_with_key(&app, "move-1", transfer.clone()).await;
    assert_eq!(moved.status(), 200);
    let moved: Value = moved.json().await.unwrap();
    let again = txn_with_key(&app, "move-1", transfer).await;
    assert_eq!(again.status(), 200);
    assert!(replayed(&again));
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["results"], moved["results"]);
    let na = moved["results"][0]["version"].as_i64().unwrap();
    assert_eq!(balance(&app, &a).await, Some((90, na)));

    // One shard, with a delete: the same.
    let one = vec![
        json!({"op": "delete", "table": "users", "shard_key": &a, "id": &a, "if_version": na}),
        json!({"op": "delete", "table": "users", "shard_key": &a, "id": "never-there"}),
    ];
    let gone = txn_with_key(&app, "close-1", one.clone()).await;
    assert_eq!(gone.status(), 200);
    let gone: Value = gone.json().await.unwrap();
    assert_eq!(gone["protocol"], "one-shard");
    assert_eq!(gone["results"][0]["deleted"], true, "{gone}");
    assert_eq!(gone["results"][1]["deleted"], false, "{gone}");
    assert!(gone["results"][1]["version"].is_null(), "{gone}");
    let again = txn_with_key(&app, "close-1", one).await;
    assert_eq!(again.status(), 200);
    assert!(replayed(&again));
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["results"], gone["results"], "{again}");
    assert_eq!(balance(&app, &a).await, None);
    assert_eq!(prepared(&app), 0);
}

#[tokio::test]
async fn an_atomic_bulk_write_is_one_transaction() {
    let app = spawn().await;
    let (a, b) = two_shards(&app);
    let batch = |bad: bool| {
        let mut records = vec![
            json!({"shard_key": &a, "id": &a, "data": {"balance": 5}}),
            json!({"shard_key": &b, "id": &b, "data": {"balance": 6}}),
        ];
        if bad {
            records.push(json!({"shard_key": &b, "id": "x"}));
        }
        json!({"table": "users", "atomic": true, "records": records})
    };
    // One record invalid: nothing written, the problem names it.
    let res = app.bulk(None, &batch(true)).await;
    let problem = assert_problem(res, 422).await;
    assert_eq!(problem["type"], "urn:shardgate:problem:invalid-operation");
    assert_eq!(problem["operation"], 2);
    assert_eq!(balance(&app, &a).await, None);
    assert_eq!(balance(&app, &b).await, None);

    let res = app.bulk(None, &batch(false)).await;
    assert_eq!(res.status(), 200);
    let done: Value = res.json().await.unwrap();
    assert_eq!(done["protocol"], "two-phase", "{done}");
    assert_eq!(done["committed"], true);
    assert_eq!(balance(&app, &a).await.unwrap().0, 5);
    assert_eq!(balance(&app, &b).await.unwrap().0, 6);
    assert_eq!(prepared(&app), 0);
}

#[tokio::test]
async fn metrics_count_transactions_by_protocol_and_outcome() {
    let app = spawn().await;
    let (a, b) = two_shards(&app);
    let post = |ops: Vec<Value>| {
        let app = &app;
        async move {
            app.post_json("/api/transaction", None, &json!({ "operations": ops }))
                .await
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        post(vec![upsert(&a, 1, Some(0)), upsert(&b, 1, Some(0))]).await,
        200
    );
    assert_eq!(
        post(vec![upsert(&a, 1, Some(0)), upsert(&b, 1, None)]).await,
        409
    );
    assert_eq!(post(vec![upsert(&a, 2, None)]).await, 200);
    let scrape = || async {
        app.client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    // The gauges are the last recovery round's (every 200 ms here): a round may have
    // seen the first transaction's parts prepared, in flight; the next sees none.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut text = scrape().await;
    while !text.contains("shardgate_transactions_in_doubt 0")
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        text = scrape().await;
    }
    for line in [
        "shardgate_transactions_total{protocol=\"two-phase\",outcome=\"committed\"} 1",
        "shardgate_transactions_total{protocol=\"two-phase\",outcome=\"aborted\"} 1",
        "shardgate_transactions_total{protocol=\"one-shard\",outcome=\"committed\"} 1",
        "shardgate_transactions_total{protocol=\"one-shard\",outcome=\"aborted\"} 0",
        "shardgate_transactions_in_doubt 0",
        "shardgate_transactions_oldest_in_doubt_seconds 0",
    ] {
        assert!(text.contains(line), "{line} not in:\n{text}");
    }
}
