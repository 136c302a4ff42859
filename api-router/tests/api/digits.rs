//! One JSON path: a bulk record's document and a list's `where` filter keep the
//! client's digits, and refuse what `jsonb` cannot hold, exactly as a single write does.

use serde_json::Value;
use test_app::{assert_problem, spawn_app, TestApp};

/// A POST of JSON text as sent (a `Value` would round the numbers first).
async fn post_text(app: &TestApp, path: &str, key: &str, body: String) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("x-shard-key", key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_bulk_record_keeps_every_digit_and_a_number_jsonb_cannot_hold_is_named_by_index() {
    let app = spawn_app().await;
    let body = r#"{"table":"users","records":[
        {"shard_key":"digits","id":"big","data":{"n":123456789012345678901234,"price":1.50}},
        {"shard_key":"digits","id":"fine","data":{"v":[1,1e-20000]}}
    ]}"#;

    let res = post_text(&app, "/api/bulk-write", "digits", body.into()).await;

    assert_eq!(res.status().as_u16(), 207);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["written"], 1);
    let failed = answer["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{answer}");
    assert_eq!(failed[0]["index"], 1);
    let reason = failed[0]["reason"].as_str().unwrap();
    assert!(reason.contains("1e-20000 has 20000 digits"), "{reason}");
    let read = app.read_strong("digits", "users", "big").await;
    assert_eq!(read.status().as_u16(), 200);
    let text = read.text().await.unwrap();
    assert!(text.contains("123456789012345678901234"), "{text}");
    assert!(text.contains("1.50"), "{text}");
    let read = app.read_strong("digits", "users", "fine").await;
    assert_eq!(read.status().as_u16(), 404, "nothing of the refused record");

    // Alone, the refused record is the whole batch's 422, still naming it.
    let only = r#"{"table":"users","records":[{"id":"f2","data":{"v":1e-20000}}]}"#;
    let res = post_text(&app, "/api/bulk-write", "digits", only.into()).await;
    let problem = assert_problem(res, 422).await;
    assert_eq!(problem["failed"][0]["index"], 0, "{problem}");
    let reason = problem["failed"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("1e-20000"), "{problem}");
}

#[tokio::test]
async fn a_where_filter_compares_the_digits_sent_and_refuses_a_number_jsonb_cannot_hold() {
    let app = spawn_app().await;
    for (id, n) in [
        ("a", "123456789012345678901234"),
        ("b", "123456789012345678901235"),
    ] {
        let body = format!(r#"{{"table":"users","id":"{id}","data":{{"n":{n}}}}}"#);
        let res = post_text(&app, "/api/write", "filtered", body).await;
        assert_eq!(res.status().as_u16(), 201);
    }
    let list = |filter: &str| {
        format!(
            "/api/read?table=users&consistency=strong&where={}",
            urlencoding(filter)
        )
    };

    let res = app
        .get("filtered", &list(r#"{"n":123456789012345678901234}"#))
        .await;

    assert_eq!(res.status().as_u16(), 200);
    let page: Value = res.json().await.unwrap();
    let ids: Vec<&str> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a"], "{page}");
    // The same everywhere: a fan-out's filter keeps its digits too.
    let all = app
        .get_json(&list(r#"{"n":123456789012345678901235}"#))
        .await;
    let ids: Vec<&str> = all["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["b"], "{all}");
    let res = app.get("filtered", &list(r#"{"n":1e-20000}"#)).await;
    let problem = assert_problem(res, 422).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("1e-20000 has 20000 digits"), "{problem}");
}

/// Percent-encodes a query value.
fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
