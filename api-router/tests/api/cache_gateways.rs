//! Two gateways in front of the same shards and the same Redis: a read-your-writes token
//! from a write acknowledged by one is honoured by the other, cache on (the other's
//! entry may predate the write when the writer could not update it).

use std::time::{Duration, Instant};

use api_router::startup::Application;
use serde_json::{json, Value};
use test_app::{spawn_app_with, TestApp};

#[tokio::test]
async fn a_token_from_one_gateway_is_honoured_by_the_cache_of_another() {
    let a = spawn_app_with(|s| {
        s.cluster.cache.enabled = true;
        s.cluster.cache.timeout_ms = 100;
        s.cluster.cache.prefix = format!("sgtest-{}", uuid::Uuid::new_v4().simple());
    })
    .await;
    // A second gateway on the same databases and cache settings.
    let b = Application::build(a.settings.clone())
        .await
        .expect("second gateway");
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
            let tokenless = token.is_none();
            if let Some(t) = token {
                req = req.header("x-min-lsn", t);
            }
            let res = req.send().await.unwrap();
            // Without a token a read may be served by a replica that has not yet
            // replayed the write: "not found" then, and no cache entry.
            if tokenless && res.status().as_u16() == 404 {
                return None;
            }
            assert_eq!(res.status().as_u16(), 200);
            let cache = res.headers()["x-cache"].to_str().unwrap().to_owned();
            let body: Value = res.json().await.unwrap();
            Some((cache, body["record"]["version"].as_i64().unwrap()))
        }
    };

    let v1 = write(&a, key, 1).await.0;
    // Gateway B reads version 1 until its cache holds it (under load, a gateway whose
    // epoch reading went stale bypasses its cache for a while).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some((cache, version)) = read_b(None).await {
            if cache == "hit" && version == v1 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "B never cached version {v1}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A acknowledges version 2; its token, read through B, must see it.
    let (v2, token) = write(&a, key, 2).await;
    assert!(v2 > v1);
    for _ in 0..20 {
        let (_, version) = read_b(Some(token.clone()))
            .await
            .expect("a read with the write's token finds it");
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

/// A forged far-ahead token cannot make a gateway cache a record as if it reflected that
/// position: read through A with a forged token, write through B, read through A with
/// B's real token → the new version.
#[tokio::test]
async fn a_forged_token_cannot_vouch_for_a_stale_cache_entry() {
    let a = spawn_app_with(|s| {
        s.cluster.cache.enabled = true;
        s.cluster.cache.timeout_ms = 100;
        s.cluster.cache.prefix = format!("sgtest-{}", uuid::Uuid::new_v4().simple());
    })
    .await;
    let b_app = a.beside().await;
    let key = "forged-token";
    let shard = a.shard_of(key).0;
    let read_a = |token: String| {
        let req = a
            .client
            .get(a.url("/api/read?table=users&id=r1"))
            .header("x-shard-key", key)
            .header("x-min-lsn", token);
        async move {
            let res = req.send().await.unwrap();
            assert_eq!(res.status().as_u16(), 200);
            let body: Value = res.json().await.unwrap();
            body["record"]["version"].as_i64().unwrap()
        }
    };

    let (v1, _) = write(&a, key, 1).await;
    // A reads with a forged token: served (from the primary) and possibly cached, but
    // never as reflecting that position.
    assert_eq!(read_a(format!("{shard}:FFFFFFFF/FFFFFFF0")).await, v1);
    assert_eq!(read_a(format!("{shard}:FFFFFFFF/FFFFFFF0")).await, v1);

    let (v2, token) = write(&b_app, key, 2).await;
    assert!(v2 > v1);
    for _ in 0..20 {
        let version = read_a(token.clone()).await;
        assert!(
            version >= v2,
            "A served version {version} to B's token after B acknowledged {v2}"
        );
    }
}
