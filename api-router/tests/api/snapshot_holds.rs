//! One API key holds at most half of a gateway's cuts kept for snapshot reads' next
//! pages: past its share its multi-page snapshot list is `429 snapshots-held`, and
//! another key's still gets a cut, so one key cannot leave every other caller's
//! multi-page snapshot read `503 snapshots-busy`.

use control_plane::keys::KeyLimits;
use serde_json::{json, Value};
use test_app::{assert_problem, spawn_app_with, TestApp};

use crate::limits_keys::{await_known, create_key};

/// A snapshot list of `users` one record a page, with `key`: its status and body.
async fn first_page(app: &TestApp, key: &str) -> (u16, Value) {
    let res = app
        .client
        .get(app.url("/api/read?table=users&consistency=snapshot&limit=1"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn one_key_holds_at_most_half_of_the_gateways_snapshots() {
    // A pool of 16: the gateway holds 4 cuts, a key at most 2.
    let app = spawn_app_with(|s| s.cluster.database.pool_max_size = 16).await;
    let greedy = create_key(&app, "greedy", "read,write", KeyLimits::default()).await;
    let other = create_key(&app, "other", "read", KeyLimits::default()).await;
    await_known(&app, &greedy).await;
    await_known(&app, &other).await;
    for i in 0..3 {
        let res = app
            .client
            .post(app.url("/api/write"))
            .bearer_auth(&greedy)
            .header("x-shard-key", format!("k{i}"))
            .json(&json!({"table": "users", "id": format!("u{i}"), "data": {"i": i}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 201);
    }

    // Each first page with more after it keeps a cut (held 5 s).
    for held in 1..=2 {
        let (status, page) = first_page(&app, &greedy).await;
        assert_eq!(status, 200, "{page}");
        assert!(page["next"].is_string(), "cut {held} kept: {page}");
    }
    let res = app
        .client
        .get(app.url("/api/read?table=users&consistency=snapshot&limit=1"))
        .bearer_auth(&greedy)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["retry-after"], "1");
    let p = assert_problem(res, 429).await;
    assert_eq!(p["type"], "urn:shardgate:problem:snapshots-held", "{p}");
    assert!(p["detail"].as_str().unwrap().contains("\"greedy\""), "{p}");
    // Another key still gets a cut of the gateway's.
    let (status, page) = first_page(&app, &other).await;
    assert_eq!(status, 200, "{page}");
    assert!(page["next"].is_string(), "{page}");
}
