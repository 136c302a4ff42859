//! Writes, reads, lists and deletes through the API, checked against the shards.

use diesel::sql_types::{BigInt, Text};
use diesel::RunQueryDsl;
use serde_json::{json, Value};

use reqwest::RequestBuilder;
use test_app::{assert_problem, spawn_app, TestApp};

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    shard_key: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[tokio::test]
async fn seed_example_is_written_to_its_primary_and_read_back_from_the_replica() {
    let app = spawn_app().await;
    let body = json!({"table": "users", "data": {"user_id": "user_123", "name": "John Doe",
        "email": "john@example.com", "partition_key": "A"}});

    let res = app.write("user_123", &body).await;

    assert_eq!(res.status().as_u16(), 201);
    let written: Value = res.json().await.unwrap();
    let shard = app.shard_of("user_123");
    assert_eq!(written["shard"], json!(shard.0));
    assert_eq!(written["table"], "users");
    assert_eq!(written["created"], true);
    let id = written["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "no id given: a UUID is generated");
    let version = written["version"].as_i64().unwrap();

    let read = app
        .read_replica_until("user_123", "users", &id, version)
        .await;
    assert_eq!(read["source"], "replica");
    assert_eq!(read["shard"], json!(shard.0));
    assert_eq!(read["record"]["data"], body["data"]);
    assert_eq!(read["record"]["shard_key"], "user_123");

    let strong: Value = app
        .read_strong("user_123", "users", &id)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(strong["source"], "primary");
    assert_eq!(strong["record"]["version"], json!(version));
}

#[tokio::test]
async fn an_update_replaces_data_and_raises_the_version() {
    let app = spawn_app().await;
    let first: Value = app
        .write(
            "k1",
            &json!({"table": "orders", "id": 7, "data": {"total": 1}}),
        )
        .await
        .json()
        .await
        .unwrap();

    let res = app
        .write(
            "k1",
            &json!({"table": "orders", "data": {"id": 7, "total": 2}}),
        )
        .await;

    assert_eq!(
        res.status().as_u16(),
        200,
        "second write of id 7 is an update"
    );
    let second: Value = res.json().await.unwrap();
    assert_eq!(second["id"], "7");
    assert_eq!(second["created"], false);
    assert!(second["version"].as_i64() > first["version"].as_i64());
    let read: Value = app
        .read_strong("k1", "orders", "7")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["record"]["data"], json!({"id": 7, "total": 2}));
    assert_eq!(read["record"]["created_at"], first["created_at"]);
}

#[tokio::test]
async fn every_key_lands_on_the_primary_the_routing_function_names() {
    let app = spawn_app().await;
    let keys: Vec<String> = (0..30)
        .map(|i| format!("user_{i}"))
        .chain(["@alice:matrix.org".into(), "42".into(), "ключ".into()])
        .collect();
    for key in &keys {
        let res = app
            .write(
                key,
                &json!({"table": "users", "id": "p", "data": {"k": key}}),
            )
            .await;
        assert_eq!(res.status().as_u16(), 201);
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body["shard"],
            json!(app.shard_of(key).0),
            "answer names the routed shard"
        );
    }

    for shard in 0..app.settings.cluster.shards.len() {
        let mut conn = app.connect(&app.primary(shard));
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT shard_key, count(*) AS n FROM records WHERE table_name = 'users' GROUP BY shard_key",
        )
        .load(&mut conn)
        .unwrap();
        let expected: Vec<&String> = keys
            .iter()
            .filter(|k| app.shard_of(k).index() == shard)
            .collect();
        assert!(!expected.is_empty(), "30+ keys reach every shard");
        assert_eq!(
            rows.len(),
            expected.len(),
            "shard {shard} holds exactly its keys"
        );
        for row in rows {
            assert_eq!(row.n, 1);
            assert_eq!(
                app.shard_of(&row.shard_key).index(),
                shard,
                "{} is misplaced",
                row.shard_key
            );
        }
    }
}

#[tokio::test]
async fn lists_are_newest_first_and_limited() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.write(
            "lister",
            &json!({"table": "events", "id": format!("e{i}"), "data": {"n": i}}),
        )
        .await;
    }
    app.write(
        "someone-else",
        &json!({"table": "events", "id": "x", "data": {}}),
    )
    .await;

    let res = app
        .get(
            "lister",
            "/api/read?table=events&limit=3&consistency=strong",
        )
        .await;

    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["count"], 3);
    let ids: Vec<&str> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["e4", "e3", "e2"]);
    let all: Value = app
        .get("lister", "/api/read?table=events&consistency=strong")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        all["count"], 5,
        "default limit 10 covers all five; other keys excluded"
    );
}

#[tokio::test]
async fn delete_removes_the_record_once() {
    let app = spawn_app().await;
    app.write(
        "del",
        &json!({"table": "products", "id": "p1", "data": {"a": 1}}),
    )
    .await;
    app.write(
        "del",
        &json!({"table": "products", "id": "p2", "data": {"a": 2}}),
    )
    .await;

    let res = app.delete("del", "products", "p1").await;

    assert_eq!(res.status().as_u16(), 204);
    assert_problem(app.read_strong("del", "products", "p1").await, 404).await;
    let again = assert_problem(app.delete("del", "products", "p1").await, 404).await;
    assert!(again["detail"].as_str().unwrap().contains("p1"));
    let kept = app.read_strong("del", "products", "p2").await;
    assert_eq!(kept.status().as_u16(), 200, "deleting p1 leaves p2");
}

#[tokio::test]
async fn a_recreated_record_never_reuses_an_old_version() {
    let app = spawn_app().await;
    let body = json!({"table": "users", "id": "v", "data": {}});
    let v1 = app.write("ver", &body).await.json::<Value>().await.unwrap()["version"].as_i64();
    app.write("ver", &body).await;
    app.delete("ver", "users", "v").await;

    let again: Value = app.write("ver", &body).await.json().await.unwrap();

    assert_eq!(again["created"], true);
    assert!(again["version"].as_i64().unwrap() > v1.unwrap() + 1);
}

/// A write of `body` as the exact JSON text given (spacing, member order and number
/// spelling kept), not yet sent.
pub fn write_text(app: &TestApp, key: &str, body: &'static str) -> RequestBuilder {
    app.client
        .post(app.url("/api/write"))
        .header("x-shard-key", key)
        .header("content-type", "application/json")
        .body(body)
}

#[tokio::test]
async fn a_document_is_stored_as_sent_not_rounded_through_a_tree() {
    let app = spawn_app().await;
    // Spacing, a repeated member, a number no f64 holds and a trailing zero: the text
    // goes to jsonb as sent, which keeps the last repeated member and every digit.
    let sent = r#"{"table":"users","id":"e1","data":{ "a" : 1, "big": 12345678901234567890123, "price": 1.50, "a": "last" }}"#;
    let res = write_text(&app, "exact_doc", sent).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let read = app.read_strong("exact_doc", "users", "e1").await;
    assert_eq!(read.status().as_u16(), 200);
    let text = read.text().await.unwrap();
    assert!(text.contains("12345678901234567890123"), "{text}");
    assert!(text.contains("1.50"), "{text}");
    let read: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(read["record"]["data"]["a"], "last");

    // In the primary's row, too: every digit, as jsonb's numeric keeps it.
    #[derive(diesel::QueryableByName)]
    struct Big {
        #[diesel(sql_type = Text)]
        big: String,
    }
    let shard = app.shard_of("exact_doc").0 as usize;
    let mut conn = app.connect(&app.primary(shard));
    let stored: Big = diesel::sql_query(
        "SELECT data->>'big' AS big FROM records WHERE table_name = 'users' AND id = 'e1'",
    )
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(stored.big, "12345678901234567890123");

    // Not an object, as text: refused by kind, nothing stored.
    let res = write_text(
        &app,
        "exact_doc",
        r#"{"table":"users","id":"e2","data": [1, 2]}"#,
    )
    .send()
    .await
    .unwrap();
    let problem = assert_problem(res, 422).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("an array"),
        "{problem}"
    );
    assert_eq!(
        app.read_strong("exact_doc", "users", "e2")
            .await
            .status()
            .as_u16(),
        404
    );
    // A repeated envelope member is the client's mistake, not a last-one-wins.
    let twice = r#"{"table":"users","id":"e3","data":{},"table":"orders"}"#;
    let res = write_text(&app, "exact_doc", twice).send().await.unwrap();
    let problem = assert_problem(res, 422).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("duplicate field `table`"), "{problem}");
    // Valid JSON finer than jsonb's numeric holds: the client's mistake (422, naming the
    // number), never the shard's refusal answered as a 500.
    let fine = r#"{"table":"users","id":"e4","data":{"v":1e-20000}}"#;
    let res = write_text(&app, "exact_doc", fine).send().await.unwrap();
    let problem = assert_problem(res, 422).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("1e-20000 has 20000 digits"), "{problem}");
    let read = app.read_strong("exact_doc", "users", "e4").await;
    assert_eq!(read.status().as_u16(), 404);
}
