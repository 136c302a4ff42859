//! Hardening of the request path: requests that must not reach a handler (wrong media
//! type, a host the gateway does not serve), poison input (NUL bytes) that must not
//! sink valid records, and cheap requests that must not cost a lot.

use futures_util::future::join_all;
use serde_json::{json, Value};
use test_app::{assert_problem, spawn_app, TestApp};

/// A body a browser form or a `fetch` without preflight could send.
async fn post_as(app: &TestApp, path: &str, content_type: &str, body: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("x-shard-key", "victim")
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn only_json_bodies_are_accepted_so_no_web_page_can_write() {
    let app = spawn_app().await;
    let write = r#"{"table":"users","id":"x","data":{"v":1}}"#;
    let bulk = r#"{"table":"users","records":[{"shard_key":"victim","id":"x","data":{"v":1}}]}"#;
    for content_type in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let res = post_as(&app, "/api/write", content_type, write).await;
        let body = assert_problem(res, 415).await;
        assert_eq!(body["type"], "urn:shardgate:problem:unsupported-media-type");
        let res = post_as(&app, "/api/bulk-write", content_type, bulk).await;
        assert_problem(res, 415).await;
    }
    // Nothing was written by any of them.
    assert_problem(app.read_strong("victim", "users", "x").await, 404).await;
    // JSON, and +json types, still work.
    let res = post_as(&app, "/api/write", "application/json", write).await;
    assert_eq!(res.status().as_u16(), 201);
}

#[tokio::test]
async fn a_host_the_gateway_does_not_serve_gets_421() {
    let app = spawn_app().await;
    for host in [
        "evil.example",
        "evil.example:8080",
        "localhost.evil.example",
    ] {
        let res = app
            .client
            .get(app.url("/api/health/live"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        let body = assert_problem(res, 421).await;
        assert_eq!(body["type"], "urn:shardgate:problem:misdirected-request");
        assert!(body["detail"].as_str().unwrap().contains("allowed_hosts"));
    }
    let res = app
        .client
        .get(app.url("/api/health/live"))
        .header("host", format!("localhost:{}", app.port))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    // HTTP/1.0 without a Host (a load balancer's bare health check) names no host a
    // browser could have been tricked into: it passes.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    socket
        .write_all(b"GET /api/health/live HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    assert_eq!(answer.get(9..12), Some("200"), "{answer}");
}

#[tokio::test]
async fn a_nul_key_in_a_batch_fails_alone_and_the_good_record_is_written() {
    let app = spawn_app().await;
    // Two keys on the same shard: one good, one the same key with a NUL in it.
    let good = "user-nul-good";
    let body = json!({"table": "users", "records": [
        {"shard_key": format!("{good}\u{0}"), "id": "bad", "data": {"v": 1}},
        {"shard_key": good, "id": "good", "data": {"v": 2}},
    ]});
    let res = app.bulk(None, &body).await;
    assert_eq!(res.status().as_u16(), 207);
    let out: Value = res.json().await.unwrap();
    assert_eq!(out["written"], 1);
    assert_eq!(out["failed"][0]["index"], 0);
    assert!(out["failed"][0]["reason"].as_str().unwrap().contains("NUL"));
    let res = app.read_strong(good, "users", "good").await;
    assert_eq!(res.status().as_u16(), 200);

    // A batch of only poison records is the client's to fix: 422, no Retry-After.
    let poison = json!({"table": "users", "records": [
        {"shard_key": "a\u{0}", "data": {"v": 1}},
    ]});
    let res = app.bulk(None, &poison).await;
    assert!(res.headers().get("retry-after").is_none());
    assert_problem(res, 422).await;
}

#[tokio::test]
async fn a_nul_in_a_cursor_is_a_400_for_keyed_and_fan_out_lists() {
    let app = spawn_app().await;
    // The cursor format is hex of a JSON triple: forge one with a NUL in the key.
    let forged: String = json!([0, "k\u{0}", "id"])
        .to_string()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    let keyed = app
        .get("k", &format!("/api/read?table=users&cursor={forged}"))
        .await;
    assert_problem(keyed, 400).await;
    let fan_out = app
        .client
        .get(app.url(&format!("/api/read?table=users&cursor={forged}")))
        .send()
        .await
        .unwrap();
    assert_problem(fan_out, 400).await;
}

#[tokio::test]
async fn shard_listing_counts_rows_only_when_asked() {
    let app = spawn_app().await;
    let plain = app.get_json("/api/shards").await;
    assert!(plain["shards"][0].get("data").is_none(), "{plain}");
    let counted = app.get_json("/api/shards?data=true").await;
    assert!(counted["shards"][0]["data"]["database_bytes"].as_i64() > Some(0));
}

/// A token far beyond anything the primary wrote cannot hold replica connections: it is
/// read from the primary at once, and normal reads beside it keep their replicas.
#[tokio::test]
async fn forged_far_ahead_tokens_do_not_starve_normal_reads() {
    let app = spawn_app().await;
    let key = "user-forged";
    let res = app
        .write(key, &json!({"table": "users", "id": "r", "data": {"v": 1}}))
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let shard = app.shard_of(key).0;
    app.read_replica_until(key, "users", "r", 1).await;
    let forged = format!("{shard}:FFFFFFFF/FFFFFFFF");

    let forged_reads = (0..50).map(|_| async {
        let res = app
            .client
            .get(app.url("/api/read?table=users&id=r"))
            .header("x-shard-key", key)
            .header("x-min-lsn", &forged)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        (status, body["source"].clone())
    });
    let normal_reads = (0..50).map(|_| async {
        let res = app.read(key, "users", "r").await;
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        (status, body["source"].clone())
    });
    let (forged, normal) = futures_util::join!(join_all(forged_reads), join_all(normal_reads));
    // Forged reads go to the primary at once; under this burst its pool may push back
    // (503, saturated), which is theirs to bear, not the normal reads'.
    for (status, source) in &forged {
        assert!(
            (*status, source.as_str()) == (200, Some("primary")) || *status == 503,
            "{status} {source}"
        );
    }
    // Every normal read succeeds (from its replica, or the primary if the monitor has
    // just found the replica lagging on this busy machine): none waits out a pool.
    for (status, source) in &normal {
        assert_eq!(
            *status, 200,
            "a normal read failed beside the forged ones ({source})"
        );
    }
}
