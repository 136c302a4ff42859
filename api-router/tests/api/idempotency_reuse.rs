//! An `Idempotency-Key` names one request whichever shards its writes reach: the key
//! sent again with another request is refused (422, nothing written) even when the
//! two requests write to different shards: a single write, a delete and a bulk write.

use reqwest::Response;
use serde_json::{json, Value};
use test_app::{assert_problem, spawn_app, TestApp};

const KEY: &str = "idempotency-key";

/// A shard key that routes to `shard`.
fn key_on(app: &TestApp, shard: usize, prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|k| app.shard_of(k).index() == shard)
        .unwrap()
}

async fn write_with(app: &TestApp, shard_key: &str, key: &str, body: &Value) -> Response {
    app.post_json_request("/api/write", Some(shard_key), body)
        .header(KEY, key)
        .send()
        .await
        .expect("write")
}

async fn refused(res: Response) {
    let problem = assert_problem(res, 422).await;
    assert_eq!(
        problem["type"],
        "urn:shardgate:problem:idempotency-key-reused"
    );
}

async fn exists(app: &TestApp, shard_key: &str, table: &str, id: &str) -> bool {
    let status = app
        .read_strong(shard_key, table, id)
        .await
        .status()
        .as_u16();
    assert!(status == 200 || status == 404, "{status}");
    status == 200
}

#[tokio::test]
async fn a_key_reused_on_another_shard_is_refused_and_nothing_is_written() {
    let app = spawn_app().await;
    let (k0, k1) = (key_on(&app, 0, "reuse-a"), key_on(&app, 1, "reuse-b"));
    let body = json!({"table": "users", "id": "x", "data": {"n": 1}});
    let first = write_with(&app, &k0, "across", &body).await;
    assert_eq!(first.status().as_u16(), 201);

    // The same body under a shard key of another shard: another request.
    refused(write_with(&app, &k1, "across", &body).await).await;
    assert!(!exists(&app, &k1, "users", "x").await, "written on shard 1");

    // A delete on another shard with the write's key.
    assert_eq!(app.write(&k1, &body).await.status().as_u16(), 201);
    let delete = app
        .client
        .delete(app.url("/api/delete?table=users&id=x"))
        .header("x-shard-key", &k1)
        .header(KEY, "across")
        .send()
        .await
        .unwrap();
    refused(delete).await;
    assert!(exists(&app, &k1, "users", "x").await, "deleted on shard 1");

    // A batch on shard 0, then another batch with the key on shard 1 only.
    let send = |records: Value| {
        app.post_json_request(
            "/api/bulk-write",
            None,
            &json!({"table": "events", "records": records}),
        )
        .header(KEY, "across-bulk")
        .send()
    };
    let res = send(json!([{"shard_key": k0, "id": "b0", "data": {}}]))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    refused(
        send(json!([{"shard_key": k1, "id": "b1", "data": {}}]))
            .await
            .unwrap(),
    )
    .await;
    assert!(
        !exists(&app, &k1, "events", "b1").await,
        "the batch written on shard 1"
    );

    // The original requests are still answered as replays.
    let again = write_with(&app, &k0, "across", &body).await;
    assert_eq!(again.status().as_u16(), 201);
    assert!(again.headers().get("idempotency-replayed").is_some());
}
