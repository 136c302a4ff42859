//! Malformed `Authorization` headers on a gateway that has keys: each is a 401
//! problem+json with `WWW-Authenticate: Bearer`, and nothing is written.

use reqwest::header::HeaderValue;
use serde_json::json;
use test_app::{assert_problem, spawn_app};

use super::{await_key, create_key};

#[tokio::test]
async fn malformed_authorization_headers_are_refused_as_problems_and_write_nothing() {
    let app = spawn_app().await;
    let key = create_key(&app, "writer", "read,write", None).await;
    await_key(&app, &key).await;
    let mut changed = key.clone().into_bytes();
    changed[10] = if changed[10] == b'a' { b'b' } else { b'a' };
    let cases: Vec<(&str, Option<Vec<u8>>)> = vec![
        ("absent", None),
        ("empty", Some(b"".to_vec())),
        ("another scheme", Some(b"Basic dXNlcjpwYXNz".to_vec())),
        ("scheme only", Some(b"Bearer".to_vec())),
        ("no token", Some(b"Bearer ".to_vec())),
        ("token without scheme", Some(key.clone().into_bytes())),
        (
            "two tokens",
            Some(format!("Bearer {key} {key}").into_bytes()),
        ),
        (
            "non-ASCII (UTF-8)",
            Some("Bearer sg_ключ".as_bytes().to_vec()),
        ),
        ("non-ASCII (Latin-1)", Some(b"Bearer sg_\xff\xfe".to_vec())),
        (
            "huge (8 KiB)",
            Some(format!("Bearer sg_{}", "a".repeat(8192)).into_bytes()),
        ),
        (
            "upper-case key",
            Some(format!("Bearer {}", key.to_uppercase()).into_bytes()),
        ),
        (
            "one character changed",
            Some([b"Bearer ".as_slice(), &changed].concat()),
        ),
    ];
    for (i, (label, value)) in cases.iter().enumerate() {
        let mut req = app
            .client
            .post(app.url("/api/write"))
            .header("x-shard-key", "h")
            .json(&json!({"table": "users", "id": format!("h{i}"), "data": {"case": label}}));
        if let Some(value) = value {
            req = req.header("authorization", HeaderValue::from_bytes(value).unwrap());
        }
        let res = req.send().await.unwrap();
        let challenge = res.headers().get("www-authenticate").cloned();
        let problem = assert_problem(res, 401).await;
        assert_eq!(
            problem["type"], "urn:shardgate:problem:unauthenticated",
            "{label}"
        );
        assert_eq!(
            challenge.as_ref().and_then(|v| v.to_str().ok()),
            Some("Bearer realm=\"shardgate\""),
            "{label}"
        );
    }
    // Nothing was written by any of them; the scheme is read in any case.
    for i in 0..cases.len() {
        let res = app
            .client
            .get(app.url(&format!("/api/read?table=users&id=h{i}&consistency=strong")))
            .header("x-shard-key", "h")
            .header("authorization", format!("bearer {key}"))
            .send()
            .await
            .unwrap();
        assert_problem(res, 404).await;
    }
}
