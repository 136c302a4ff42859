//! Records sent without an id under an `Idempotency-Key`: a transaction, an atomic bulk
//! write and a plain bulk write sent twice store each record once, and the second answer
//! is the first one replayed: the same ids, `idempotency-replayed: true`. With every
//! record id-less and with ids and id-less records mixed.

use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::transaction::{spawn, two_shards};

const KEY: &str = "idempotency-key";
const REPLAYED: &str = "idempotency-replayed";

async fn send(app: &TestApp, path: &str, key: &str, body: &Value) -> (u16, bool, Value) {
    let res = app
        .post_json_request(path, None, body)
        .header(KEY, key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = res.status().as_u16();
    let replayed = res.headers().get(REPLAYED).map(|v| v.as_bytes()) == Some(b"true");
    (status, replayed, res.json().await.expect("JSON answer"))
}

/// The ids of `table`'s records under `key`, read from the primary.
async fn ids_under(app: &TestApp, key: &str, table: &str) -> Vec<String> {
    let res = app
        .get(
            key,
            &format!("/api/read?table={table}&limit=100&consistency=strong"),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let mut ids: Vec<String> = body["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// Sends `body` to `path` twice with one key: the second answer replays the first, and
/// `records` (per shard key) are all that is stored.
async fn twice_stores_once(
    app: &TestApp,
    path: &str,
    idempotency_key: &str,
    body: Value,
    expect: &[(&str, usize)],
) -> Value {
    let (status, replayed, first) = send(app, path, idempotency_key, &body).await;
    assert_eq!(status, 200, "{first}");
    assert!(!replayed, "the first answer is no replay");
    let before: Vec<Vec<String>> = {
        let mut all = Vec::new();
        for (key, count) in expect {
            let ids = ids_under(app, key, "orders").await;
            assert_eq!(ids.len(), *count, "{key}: {ids:?}");
            all.push(ids);
        }
        all
    };
    let (status, replayed, again) = send(app, path, idempotency_key, &body).await;
    assert_eq!(status, 200, "the retry: {again}");
    assert!(replayed, "the retry is answered as a replay: {again}");
    for ((key, _), ids) in expect.iter().zip(&before) {
        assert_eq!(
            &ids_under(app, key, "orders").await,
            ids,
            "{key}: the retry stored nothing new"
        );
    }
    assert_eq!(again["results"], first["results"], "the same answer");
    first
}

#[tokio::test]
async fn a_transaction_of_idless_records_sent_again_stores_each_once() {
    let app = spawn().await;
    let (a, b) = two_shards(&app);
    // The repro: one id-less operation.
    let one = json!({"operations": [{"table": "orders", "shard_key": &a, "data": {"n": 1}}]});
    let first = twice_stores_once(&app, "/api/transaction", "t-1", one, &[(&a, 1)]).await;
    assert_eq!(first["results"][0]["created"], true);

    // Across two shards, every record id-less.
    let (c, d) = (format!("{a}-c"), format!("{b}-d"));
    let all = json!({"operations": [
        {"table": "orders", "shard_key": &c, "data": {"n": 1}},
        {"table": "orders", "shard_key": &c, "data": {"n": 2}},
        {"table": "orders", "shard_key": &d, "data": {"n": 3}},
    ]});
    let first = twice_stores_once(&app, "/api/transaction", "t-2", all, &[(&c, 2), (&d, 1)]).await;
    let ids: Vec<&str> = (0..3)
        .map(|i| first["results"][i]["id"].as_str().unwrap())
        .collect();
    assert_ne!(ids[0], ids[1], "each id-less record has its own id");

    // Ids and id-less records mixed (answered 422 idempotency-entries-incomplete before).
    let (e, f) = (format!("{a}-e"), format!("{b}-f"));
    let mixed = json!({"operations": [
        {"table": "orders", "shard_key": &e, "id": "named", "data": {"n": 1}},
        {"table": "orders", "shard_key": &e, "data": {"n": 2}},
        {"table": "orders", "shard_key": &f, "data": {"id": "in-data", "n": 3}},
        {"table": "orders", "shard_key": &f, "data": {"n": 4}},
    ]});
    let first =
        twice_stores_once(&app, "/api/transaction", "t-3", mixed, &[(&e, 2), (&f, 2)]).await;
    assert_eq!(first["results"][0]["id"], "named");
    assert_eq!(first["results"][2]["id"], "in-data");

    // The same records without a key are new records each time: the key is what names them.
    let (status, _, _) = send(
        &app,
        "/api/transaction",
        "t-4",
        &json!({"operations": [{"table": "orders", "shard_key": &a, "data": {"n": 1}}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        ids_under(&app, &a, "orders").await.len(),
        2,
        "another key, another record"
    );
}

#[tokio::test]
async fn an_atomic_bulk_write_of_idless_records_sent_again_stores_each_once() {
    let app = spawn().await;
    let (a, b) = two_shards(&app);
    let all = json!({"table": "orders", "atomic": true, "records": [
        {"shard_key": &a, "data": {"n": 1}},
        {"shard_key": &b, "data": {"n": 2}},
    ]});
    twice_stores_once(&app, "/api/bulk-write", "ab-1", all, &[(&a, 1), (&b, 1)]).await;
    let (c, d) = (format!("{a}-c"), format!("{b}-d"));
    let mixed = json!({"table": "orders", "atomic": true, "records": [
        {"shard_key": &c, "id": "named", "data": {"n": 1}},
        {"shard_key": &c, "data": {"n": 2}},
        {"shard_key": &d, "data": {"n": 3}},
    ]});
    twice_stores_once(&app, "/api/bulk-write", "ab-2", mixed, &[(&c, 2), (&d, 1)]).await;
}

#[tokio::test]
async fn a_plain_bulk_write_of_idless_records_sent_again_stores_each_once() {
    let app = spawn().await;
    let (a, b) = two_shards(&app);
    for (n, records) in [
        (
            "all",
            json!([
                {"shard_key": &a, "data": {"n": 1}},
                {"shard_key": &a, "data": {"n": 2}},
                {"shard_key": &b, "data": {"n": 3}},
            ]),
        ),
        (
            "mixed",
            json!([
                {"shard_key": &a, "id": "named", "data": {"n": 1}},
                {"shard_key": &a, "data": {"n": 2}},
                {"shard_key": &b, "data": {"id": "in-data", "n": 3}},
            ]),
        ),
    ] {
        let before_a = ids_under(&app, &a, "orders").await.len();
        let before_b = ids_under(&app, &b, "orders").await.len();
        let body = json!({"table": "orders", "records": records});
        let key = format!("pb-{n}");
        let (status, replayed, first) = send(&app, "/api/bulk-write", &key, &body).await;
        assert_eq!((status, replayed), (200, false), "{first}");
        assert_eq!(first["written"], 3, "{first}");
        let ids_a = ids_under(&app, &a, "orders").await;
        let ids_b = ids_under(&app, &b, "orders").await;
        assert_eq!((ids_a.len(), ids_b.len()), (before_a + 2, before_b + 1));
        let (status, replayed, again) = send(&app, "/api/bulk-write", &key, &body).await;
        assert_eq!((status, replayed), (200, true), "{n}: {again}");
        assert_eq!(again["written"], 3, "{again}");
        assert_eq!(ids_under(&app, &a, "orders").await, ids_a, "{n}");
        assert_eq!(ids_under(&app, &b, "orders").await, ids_b, "{n}");
    }
}
