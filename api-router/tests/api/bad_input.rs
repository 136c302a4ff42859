//! Every client mistake gets a 4xx problem+json naming it, and changes nothing stored.

use serde_json::{json, Value};
use test_app::{assert_problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn bad_requests_get_named_problems_and_leave_data_untouched() {
    let app = spawn_app().await;
    let original = json!({"table": "users", "id": "keep", "data": {"v": 1}});
    let stored: Value = app.write("victim", &original).await.json().await.unwrap();
    let client = &app.client;
    let write = app.url("/api/write");
    let long_key = "k".repeat(257);

    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "no key",
            app.post_json_request("/api/write", None, &original),
            400,
            "x-shard-key header is required",
        ),
        (
            "empty key",
            app.post_json_request("/api/write", Some(""), &original),
            400,
            "empty",
        ),
        (
            "long key",
            app.post_json_request("/api/write", Some(&long_key), &original),
            400,
            "257 bytes",
        ),
        (
            "unknown table",
            app.post_json_request(
                "/api/write",
                Some("victim"),
                &json!({"table": "secrets", "id": "keep", "data": {}}),
            ),
            422,
            "allowed tables: users, orders, products, events",
        ),
        (
            "malformed",
            client
                .post(&write)
                .header("x-shard-key", "victim")
                .header("content-type", "application/json")
                .body("{\"table\": \"users\", "),
            400,
            "malformed JSON",
        ),
        (
            "data array",
            app.post_json_request(
                "/api/write",
                Some("victim"),
                &json!({"table": "users", "id": "keep", "data": [1]}),
            ),
            422,
            "must be a JSON object, got an array",
        ),
        (
            "table number",
            app.post_json_request(
                "/api/write",
                Some("victim"),
                &json!({"table": 5, "id": "keep", "data": {}}),
            ),
            422,
            "invalid type",
        ),
        (
            "missing data",
            app.post_json_request(
                "/api/write",
                Some("victim"),
                &json!({"table": "users", "id": "keep"}),
            ),
            422,
            "missing field `data`",
        ),
        (
            "nul",
            app.post_json_request(
                "/api/write",
                Some("victim"),
                &json!({"table": "users", "id": "keep", "data": {"s": "a\u{0}b"}}),
            ),
            422,
            "NUL character",
        ),
        (
            "object id",
            app.post_json_request(
                "/api/write",
                Some("victim"),
                &json!({"table": "users", "id": {"x": 1}, "data": {}}),
            ),
            422,
            "id must be",
        ),
        (
            "xml",
            client
                .post(&write)
                .header("x-shard-key", "victim")
                .header("content-type", "application/xml")
                .body("<a/>"),
            415,
            "must be JSON",
        ),
        (
            "limit 0",
            client
                .get(app.url("/api/read?table=users&limit=0"))
                .header("x-shard-key", "victim"),
            400,
            "limit is \"0\"",
        ),
        (
            "limit text",
            client
                .get(app.url("/api/read?table=users&limit=ten"))
                .header("x-shard-key", "victim"),
            400,
            "limit",
        ),
        (
            "no table",
            client
                .get(app.url("/api/read?id=keep"))
                .header("x-shard-key", "victim"),
            400,
            "table",
        ),
        (
            "consistency",
            client
                .get(app.url("/api/read?table=users&id=keep&consistency=maybe"))
                .header("x-shard-key", "victim"),
            400,
            "unknown consistency",
        ),
        (
            "bad header consistency",
            client
                .get(app.url("/api/read?table=users&id=keep"))
                .header("x-shard-key", "victim")
                .header("x-consistency", "linear"),
            400,
            "unknown consistency",
        ),
        (
            "delete no id",
            client
                .delete(app.url("/api/delete?table=users"))
                .header("x-shard-key", "victim"),
            400,
            "id",
        ),
        ("wrong method", client.get(&write), 405, "use POST"),
        (
            "no route",
            client.get(app.url("/api/nothing")),
            404,
            "/api/nothing",
        ),
    ];

    for (name, request, status, needle) in cases {
        let body = assert_problem(request.send().await.unwrap(), status).await;
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains(needle),
            "{name}: {detail:?} should mention {needle:?}"
        );
    }

    let after: Value = app
        .read_strong("victim", "users", "keep")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["record"]["data"], json!({"v": 1}));
    assert_eq!(after["record"]["version"], stored["version"]);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app_with(|s| s.server.max_body_bytes = 1024).await;
    let big = json!({"table": "users", "data": {"blob": "x".repeat(2000)}});

    let body = assert_problem(app.write("k", &big).await, 413).await;

    assert!(body["detail"].as_str().unwrap().contains("1024 bytes"));
    let list: Value = app
        .get("k", "/api/read?table=users&consistency=strong")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["count"], 0, "nothing was written");
}

#[tokio::test]
async fn request_ids_are_echoed_and_appear_in_problems() {
    let app = spawn_app().await;

    let res = app
        .client
        .get(app.url("/api/read?table=users&id=nope"))
        .header("x-shard-key", "k")
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();

    assert_eq!(res.headers()["x-request-id"], "trace-me-42");
    let body = assert_problem(res, 404).await;
    assert_eq!(body["request_id"], "trace-me-42");
    let fresh = app.client.get(app.url("/api/health")).send().await.unwrap();
    assert_eq!(
        fresh.headers()["x-request-id"].len(),
        36,
        "generated when absent"
    );
}
