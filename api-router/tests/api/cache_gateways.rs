//! Two gateways in front of the same shards and the same Redis: a read-your-writes token
//! from a write acknowledged by one is honoured by the other, cache on (each gateway
//! process has its own cache keys, so the other's entry may predate the write).

use std::time::{Duration, Instant};

use api_router::startup::Application;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp};

#[tokio::test]
async fn a_token_from_one_gateway_is_honoured_by_the_cache_of_another() {
    let a = spawn_app_with(|s| {
        s.cluster.cache.enabled = true;
        s.cluster.cache.timeout_ms = 100;
        s.cluster.cache.prefix = format!("sgtest-{}", uuid::Uuid::new_v4().simple());
    })
    .await;
    // A second gateway on the same databases and cache settings.
    let b = Application::build(a.settings.clone()).expect("second gateway");
    let b_url = format!("http://127.0.0.1:{}", b.port());
    let b_handle = b.handle();
    tokio::spawn(b.run_until_stopped());
    let key = "two-gateways";
    let read_b = |token: Option<String>| {
        let (client, url) = (
            a.client.clone(),
            format!("{b_url}/api/read?table=users&id=r1"),
        );
        async move {
            let mut req = client.get(url).header("x-shard-key", key);
            if let Some(t) = token {
                req = req.header("x-min-lsn", t);
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status().as_u16(), 200);
            let cache = res.headers()["x-cache"].to_str().unwrap().to_owned();
            let body: Value = res.json().await.unwrap();
            (cache, body["record"]["version"].as_i64().unwrap())
        }
    };

    let v1 = write(&a, key, 1).await.0;
    // Gateway B reads version 1 until its cache holds it.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (cache, version) = read_b(None).await;
        if cache == "hit" && version == v1 {
            break;
        }
        assert!(Instant::now() < deadline, "B never cached version {v1}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A acknowledges version 2; its token, read through B, must see it.
    let (v2, token) = write(&a, key, 2).await;
    assert!(v2 > v1);
    for _ in 0..20 {
        let (_, version) = read_b(Some(token.clone())).await;
        assert!(
            version >= v2,
            "B served version {version} to a token read after A acknowledged {v2}"
        );
    }
    // Through the gateway that wrote it, the same token is served from the cache: the
    // writer's entry reflects its own commit.
    let res = a
        .client
        .get(a.url("/api/read?table=users&id=r1"))
        .header("x-shard-key", key)
        .header("x-min-lsn", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-cache"], "hit");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["record"]["version"].as_i64(), Some(v2));
    b_handle.stop(false).await;
}

/// Writes users/r1 through `app`; returns (version, token).
async fn write(app: &TestApp, key: &str, n: i64) -> (i64, String) {
    let res = app
        .write(
            key,
            &json!({"table": "users", "id": "r1", "data": {"n": n}}),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    let token = res.headers()["x-shard-lsn"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    (body["version"].as_i64().unwrap(), token)
}
