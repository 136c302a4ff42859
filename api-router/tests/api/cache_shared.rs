//! Every gateway shares one cache key space: a write through any gateway fixes the
//! entry every other gateway reads, and a writer that cannot reach Redis moves the
//! shard's epoch on the shard, so the others stop serving the old entry within about
//! one health check.

use std::time::{Duration, Instant};

use api_router::startup::Application;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp};

/// Another gateway on the same databases, with its settings adjusted.
async fn gateway(
    app: &TestApp,
    adjust: impl FnOnce(&mut api_router::settings::Settings),
) -> (String, actix_web::dev::ServerHandle) {
    let mut settings = app.settings.clone();
    adjust(&mut settings);
    let built = Application::build(settings).await.expect("gateway");
    let url = format!("http://127.0.0.1:{}", built.port());
    let handle = built.handle();
    tokio::spawn(built.run_until_stopped());
    (url, handle)
}

async fn write(client: &reqwest::Client, base: &str, key: &str, id: &str, v: i64) -> (i64, String) {
    let res = client
        .post(format!("{base}/api/write"))
        .header("x-shard-key", key)
        .json(&json!({"table": "users", "id": id, "data": {"v": v}}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let token = res.headers()["x-shard-lsn"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    (body["version"].as_i64().unwrap(), token)
}

/// (x-cache, version) of an eventual read, or a token read with `token`.
async fn read(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    id: &str,
    token: Option<&str>,
) -> (String, i64) {
    let mut req = client
        .get(format!("{base}/api/read?table=users&id={id}"))
        .header("x-shard-key", key);
    if let Some(t) = token {
        req = req.header("x-min-lsn", t);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let cache = res
        .headers()
        .get("x-cache")
        .map_or("-".into(), |v| v.to_str().unwrap().to_owned());
    let body: Value = res.json().await.unwrap();
    (cache, body["record"]["version"].as_i64().unwrap())
}

fn cached(s: &mut api_router::settings::Settings) {
    s.cluster.cache.enabled = true;
    s.cluster.cache.timeout_ms = 100;
    s.cluster.cache.prefix = format!("sgtest-{}", uuid::Uuid::new_v4().simple());
}

#[tokio::test]
async fn a_write_through_any_gateway_is_what_every_other_gateway_s_cache_serves() {
    let app = spawn_app_with(cached).await;
    let (b, hb) = gateway(&app, |_| {}).await;
    let (c, hc) = gateway(&app, |_| {}).await;
    tokio::time::sleep(Duration::from_millis(700)).await; // every gateway knows the epochs
    let bases = [app.address.clone(), b, c];
    let (mut stale, mut token_misses, mut hits) = (0, 0, 0);
    for i in 0..1000usize {
        let id = format!("r{}", i % 10);
        let (writer, reader, token_reader) =
            (&bases[i % 3], &bases[(i + 1) % 3], &bases[(i + 2) % 3]);
        let (version, token) = write(&app.client, writer, "shared-cache", &id, i as i64).await;
        let (cache, seen) = read(&app.client, reader, "shared-cache", &id, None).await;
        if cache == "hit" {
            hits += 1;
            if seen < version {
                stale += 1;
            }
        }
        let (_, seen) = read(&app.client, token_reader, "shared-cache", &id, Some(&token)).await;
        if seen < version {
            token_misses += 1;
        }
    }
    assert_eq!(stale, 0, "cache hits older than the acknowledged write");
    assert_eq!(token_misses, 0, "token reads older than their write");
    assert!(
        hits > 500,
        "the test must exercise the cache: {hits} hits of 1000"
    );
    std::mem::drop((hb.stop(false), hc.stop(false)));
}

#[tokio::test]
async fn a_writer_without_redis_makes_every_gateway_drop_the_old_entry_within_a_check() {
    let app = spawn_app_with(cached).await;
    // Gateway W cannot reach Redis at all (nothing listens there).
    let (w, hw) = gateway(&app, |s| s.cluster.cache.url = "redis://127.0.0.1:1".into()).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (v1, _) = write(&app.client, &app.address, "no-redis", "r", 1).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (cache, version) = read(&app.client, &app.address, "no-redis", "r", None).await;
        if cache == "hit" && version == v1 {
            break;
        }
        assert!(Instant::now() < deadline, "never cached v{v1}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (v2, _) = write(&app.client, &w, "no-redis", "r", 2).await;
    let acked = Instant::now();
    let window = loop {
        let (cache, version) = read(&app.client, &app.address, "no-redis", "r", None).await;
        if cache == "hit" && version == v1 {
            assert!(
                acked.elapsed() < Duration::from_secs(2),
                "still served v{v1} after 2 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        break acked.elapsed();
    };
    eprintln!(
        "stale window after a write whose gateway could not reach Redis: {} ms",
        window.as_millis()
    );
    // From then on, no hit is older than v2.
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        let (cache, version) = read(&app.client, &app.address, "no-redis", "r", None).await;
        assert!(
            !(cache == "hit" && version < v2),
            "a hit of v{version} after v{v2}"
        );
    }
    std::mem::drop(hw.stop(false));
}
