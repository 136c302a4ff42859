//! `Idempotency-Key`: a write, delete or bulk write sent again with its key is written
//! once and answered as the first time; the key with another request is refused.

use futures_util::future::join_all;
use reqwest::Response;
use serde_json::{json, Value};
use test_app::{assert_problem, spawn_app, spawn_app_with, TestApp};

use crate::records::write_text;

const KEY: &str = "idempotency-key";
const REPLAYED: &str = "idempotency-replayed";

async fn write_with(app: &TestApp, shard_key: &str, key: &str, body: &Value) -> Response {
    app.post_json_request("/api/write", Some(shard_key), body)
        .header(KEY, key)
        .send()
        .await
        .expect("write")
}

fn replayed(res: &Response) -> bool {
    res.headers().get(REPLAYED).map(|v| v.as_bytes()) == Some(b"true")
}

async fn version_of(app: &TestApp, shard_key: &str, table: &str, id: &str) -> Option<i64> {
    let res = app.read_strong(shard_key, table, id).await;
    if res.status().as_u16() == 404 {
        return None;
    }
    let body: Value = res.json().await.expect("record");
    Some(body["record"]["version"].as_i64().expect("a version"))
}

#[tokio::test]
async fn a_write_sent_again_with_its_key_is_written_once_and_answered_alike() {
    let app = spawn_app().await;
    // No id: the gateway generates one, and the retry must get the same one back.
    let body = json!({"table": "users", "data": {"name": "Ada"}});

    let first = write_with(&app, "idem_w", "order-1", &body).await;
    assert_eq!(first.status().as_u16(), 201);
    assert!(!replayed(&first));
    let first: Value = first.json().await.unwrap();

    let again = write_with(&app, "idem_w", "\"order-1\"", &body).await;
    assert_eq!(again.status().as_u16(), 201, "answered as the first time");
    assert!(replayed(&again), "marked as a replay");
    let again: Value = again.json().await.unwrap();
    for field in [
        "id",
        "version",
        "created",
        "created_at",
        "updated_at",
        "shard",
    ] {
        assert_eq!(again[field], first[field], "{field}");
    }
    let id = first["id"].as_str().unwrap();
    let stored = version_of(&app, "idem_w", "users", id).await;
    assert_eq!(
        stored,
        first["version"].as_i64(),
        "not written a second time"
    );

    // A new key is a new write of the same record.
    let body = json!({"table": "users", "id": id, "data": {"name": "Ada"}});
    let third = write_with(&app, "idem_w", "order-2", &body).await;
    assert_eq!(third.status().as_u16(), 200);
    let third: Value = third.json().await.unwrap();
    assert!(third["version"].as_i64() > first["version"].as_i64());
}

#[tokio::test]
async fn the_same_request_laid_out_differently_is_still_the_same_request() {
    let app = spawn_app().await;
    let send = |text: &'static str| {
        write_text(&app, "idem_l", text)
            .header(KEY, "layout-1")
            .send()
    };
    let first = send(r#"{"table":"users","data":{"b":2,"a":1}}"#)
        .await
        .unwrap();
    assert_eq!(first.status().as_u16(), 201);
    let first: Value = first.json().await.unwrap();
    // Members in another order, other spacing: the same request, answered alike.
    let again = send("{ \"data\" : { \"a\" : 1 ,\n \"b\" : 2 } , \"table\" : \"users\" }")
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 201);
    assert!(replayed(&again));
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["version"], first["version"]);
    // Another value is another request.
    let other = send(r#"{"table":"users","data":{"b":2,"a":3}}"#)
        .await
        .unwrap();
    assert_problem(other, 422).await;
}

#[tokio::test]
async fn a_key_sent_with_another_request_is_refused_and_nothing_changes() {
    let app = spawn_app().await;
    let first = json!({"table": "users", "id": "u1", "data": {"n": 1}});
    let res = write_with(&app, "idem_r", "k-1", &first).await;
    assert_eq!(res.status().as_u16(), 201);
    let version = version_of(&app, "idem_r", "users", "u1").await;

    let other = json!({"table": "users", "id": "u1", "data": {"n": 2}});
    let problem = assert_problem(write_with(&app, "idem_r", "k-1", &other).await, 422).await;
    assert_eq!(
        problem["type"],
        "urn:shardgate:problem:idempotency-key-reused"
    );
    assert_eq!(problem["header"], KEY);
    assert_eq!(version_of(&app, "idem_r", "users", "u1").await, version);
    let read: Value = app
        .read_strong("idem_r", "users", "u1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        read["record"]["data"]["n"], 1,
        "the first request's data stays"
    );

    // The same key under another shard key is another request, too.
    let moved = write_with(&app, "idem_r_other", "k-1", &first).await;
    assert_problem(moved, 422).await;
}

#[tokio::test]
async fn bad_keys_get_a_400_naming_the_header_and_nothing_is_written() {
    let app = spawn_app().await;
    let long = "k".repeat(256);
    for bad in ["", "two words", "\"unterminated", long.as_str()] {
        let body = json!({"table": "users", "id": "never", "data": {}});
        let problem = assert_problem(write_with(&app, "idem_b", bad, &body).await, 400).await;
        assert_eq!(problem["header"], KEY, "{bad:?}");
    }
    let res = app
        .post_json_request(
            "/api/write",
            Some("idem_b"),
            &json!({"table": "users", "id": "never", "data": {}}),
        )
        .header(
            KEY,
            reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(assert_problem(res, 400).await["header"], KEY);
    assert_eq!(version_of(&app, "idem_b", "users", "never").await, None);
}

/// A write with `key`, sent again while the gateway answers `503 shard-saturated` (no
/// connection was free within its wait, so nothing was sent), as a client retries with
/// its key; the answer, and how many times the shard was saturated.
async fn write_until_taken(app: &TestApp, key: &str, body: &Value) -> (Response, usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut saturated = 0;
    loop {
        let res = write_with(app, "idem_c", key, body).await;
        if res.status().as_u16() != 503 || std::time::Instant::now() > deadline {
            return (res, saturated);
        }
        let problem: Value = res.json().await.expect("a problem");
        assert_eq!(
            problem["type"], "urn:shardgate:problem:shard-saturated",
            "{problem}"
        );
        saturated += 1;
    }
}

#[tokio::test]
async fn concurrent_requests_with_one_key_write_once() {
    let app = spawn_app().await;
    let body = json!({"table": "users", "id": "race", "data": {"n": 1}});
    let sent = (0..8).map(|_| write_until_taken(&app, "race-key", &body));
    let answers = join_all(sent).await;
    let mut fresh = 0;
    let mut versions = Vec::new();
    let mut saturated = 0;
    for (res, times) in answers {
        saturated += times;
        let (status, was_replayed) = (res.status().as_u16(), replayed(&res));
        if status != 201 {
            panic!("{status}: {}", res.text().await.unwrap_or_default());
        }
        fresh += usize::from(!was_replayed);
        let body: Value = res.json().await.unwrap();
        versions.push(body["version"].as_i64().unwrap());
    }
    eprintln!("8 requests with one key: {saturated} answers of 503 shard-saturated, sent again");
    assert_eq!(fresh, 1, "exactly one request wrote");
    assert!(versions.windows(2).all(|w| w[0] == w[1]), "{versions:?}");
    assert_eq!(
        version_of(&app, "idem_c", "users", "race").await,
        Some(versions[0])
    );
}

#[tokio::test]
async fn a_delete_sent_again_is_answered_alike() {
    let app = spawn_app().await;
    let body = json!({"table": "users", "id": "gone", "data": {}});
    assert_eq!(app.write("idem_d", &body).await.status().as_u16(), 201);
    let delete = || {
        app.client
            .delete(app.url("/api/delete?table=users&id=gone"))
            .header("x-shard-key", "idem_d")
            .header(KEY, "del-1")
            .send()
    };
    let first = delete().await.unwrap();
    assert_eq!(first.status().as_u16(), 204);
    assert!(!replayed(&first));
    // Written again in between: the retried delete must not delete it a second time.
    assert_eq!(app.write("idem_d", &body).await.status().as_u16(), 201);
    let again = delete().await.unwrap();
    assert_eq!(again.status().as_u16(), 204);
    assert!(replayed(&again));
    assert!(version_of(&app, "idem_d", "users", "gone").await.is_some());
}

#[tokio::test]
async fn a_bulk_write_sent_again_writes_nothing_twice_and_another_batch_is_refused_whole() {
    let app = spawn_app().await;
    let records: Vec<Value> = (0..40)
        .map(|i| json!({"shard_key": format!("idem_bulk_{i}"), "id": format!("b{i}"), "data": {"i": i}}))
        .collect();
    let batch = json!({"table": "events", "records": records});
    let send = |body: &Value, key: &str| {
        app.post_json_request("/api/bulk-write", None, body)
            .header(KEY, key.to_owned())
            .send()
    };
    let first = send(&batch, "bulk-1").await.unwrap();
    assert_eq!(first.status().as_u16(), 200);
    assert!(!replayed(&first));
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["written"], 40);
    let before = version_of(&app, "idem_bulk_7", "events", "b7").await;

    let again = send(&batch, "bulk-1").await.unwrap();
    assert_eq!(again.status().as_u16(), 200);
    assert!(replayed(&again));
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["written"], 40);
    assert_eq!(
        version_of(&app, "idem_bulk_7", "events", "b7").await,
        before
    );

    // The key with a batch that reaches shards the first one did too, and records it
    // did not have: refused before any shard writes.
    let other: Vec<Value> = (0..40)
        .map(|i| json!({"shard_key": format!("idem_other_{i}"), "id": format!("o{i}"), "data": {}}))
        .collect();
    let res = send(&json!({"table": "events", "records": other}), "bulk-1")
        .await
        .unwrap();
    let problem = assert_problem(res, 422).await;
    assert_eq!(
        problem["type"],
        "urn:shardgate:problem:idempotency-key-reused"
    );
    for i in 0..40 {
        let key = format!("idem_other_{i}");
        assert_eq!(
            version_of(&app, &key, "events", &format!("o{i}")).await,
            None
        );
    }
}

#[tokio::test]
async fn an_expired_key_is_swept_and_then_writes_again() {
    let app = spawn_app_with(|s| {
        s.server.idempotency_ttl_secs = 1;
        s.server.idempotency_sweep_secs = 1;
    })
    .await;
    let body = json!({"table": "users", "id": "ttl", "data": {}});
    let first = write_with(&app, "idem_ttl", "short-lived", &body).await;
    assert_eq!(first.status().as_u16(), 201);
    let first: Value = first.json().await.unwrap();
    let shard = app.shard_of("idem_ttl").index();
    let entries = || {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = app.connect(&app.primary(shard));
        let sql = "SELECT count(*) AS n FROM shardgate_idempotency WHERE key = 'short-lived'";
        diesel::RunQueryDsl::get_result::<N>(diesel::sql_query(sql), &mut conn)
            .unwrap()
            .n
    };
    assert_eq!(entries(), 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while entries() > 0 {
        assert!(std::time::Instant::now() < deadline, "never swept");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let again = write_with(&app, "idem_ttl", "short-lived", &body).await;
    assert_eq!(
        again.status().as_u16(),
        200,
        "written again, over the record"
    );
    assert!(!replayed(&again));
    let again: Value = again.json().await.unwrap();
    assert!(again["version"].as_i64() > first["version"].as_i64());
}
