//! The cluster views: `/api/analytics/metrics?scope=cluster` merges every live
//! gateway's figures and names those that did not publish in time; `/api/shards/load`
//! shows load per slot, the hot slots and keys. Gateways here share one test's
//! databases, as several gateways behind a load balancer share the cluster's.

use std::time::{Duration, Instant};

use api_router::startup::Application;
use futures_util::future::join_all;
use serde_json::{json, Value};
use shard_manager::ShardKey;
use test_app::{assert_problem, spawn_app, spawn_app_with, TestApp};

/// Another gateway on the same databases (shards and metadata), with its own settings.
struct Extra {
    url: String,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Extra {
    fn drop(&mut self) {
        std::mem::drop(self.handle.stop(false));
    }
}

async fn another_gateway(
    app: &TestApp,
    adjust: impl FnOnce(&mut api_router::server::settings::Settings),
) -> Extra {
    let mut settings = app.settings.clone();
    adjust(&mut settings);
    let built = Application::build(settings).await.expect("another gateway");
    let extra = Extra {
        url: format!("http://127.0.0.1:{}", built.port()),
        handle: built.handle(),
    };
    tokio::spawn(built.run_until_stopped());
    extra
}

fn slot_of(app: &TestApp, key: &str) -> u32 {
    let key = ShardKey::parse(key).unwrap();
    app.router().route(key).unwrap().slot().0
}

async fn get_json(client: &reqwest::Client, url: String) -> Value {
    let res = client.get(&url).send().await.expect("get");
    assert_eq!(res.status().as_u16(), 200, "{url}");
    res.json().await.expect("JSON body")
}

/// `n` writes of key `key` through the gateway at `base`, 8 at a time.
async fn writes(client: &reqwest::Client, base: &str, key: &str, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
        let sent = chunk.iter().map(|i| {
            client
                .post(format!("{base}/api/write"))
                .header("x-shard-key", key)
                .json(&json!({"table": "users", "id": format!("{key}-{i}"), "data": {"i": i}}))
                .send()
        });
        for res in join_all(sent).await {
            let res = res.expect("write");
            let status = res.status().as_u16();
            if status != 201 && status != 200 {
                let body = res.text().await.unwrap_or_default();
                panic!("write answered {status}: {body}");
            }
        }
    }
}

/// Polls `check` on `url` every 200 ms until it holds (10 s at most); returns the last body.
async fn until(
    client: &reqwest::Client,
    url: String,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = get_json(client, url.clone()).await;
        if check(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{what} within 10 s: {body:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_cluster_view_merges_every_gateways_figures_and_equals_their_sum() {
    let a = spawn_app().await;
    let b = another_gateway(&a, |_| {}).await;
    writes(&a.client, &a.address, "left", 150).await;
    writes(&a.client, &b.url, "right", 250).await;
    let cluster = |c: &Value| c["gateways"].as_array().is_some_and(|g| g.len() == 2);
    let url = a.url("/api/analytics/metrics?scope=cluster&window=60s");
    until(
        &a.client,
        url.clone(),
        "both gateways in the cluster view",
        cluster,
    )
    .await;
    // Both gateways' publishers run every second: after two, the figures are current.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let mine = get_json(&a.client, a.url("/api/analytics/metrics")).await;
    let theirs = get_json(&a.client, format!("{}/api/analytics/metrics", b.url)).await;
    let merged = get_json(&a.client, url).await;

    let sum = mine["totals"]["requests"].as_u64().unwrap()
        + theirs["totals"]["requests"].as_u64().unwrap();
    let total = merged["totals"]["requests"].as_u64().unwrap();
    assert!(sum >= 400, "{sum}");
    // Within 1%: the views read a moment apart see one or two requests of their own.
    assert!(
        total.abs_diff(sum) * 100 <= sum,
        "cluster {total}, gateways' own {sum}"
    );
    assert_eq!(merged["scope"], "cluster");
    assert_eq!(merged["partial"], false);
    assert_eq!(merged["missing_gateways"], json!([]));
    assert_eq!(merged["gateways"][0]["this_gateway"], true);
    assert_eq!(
        merged["gateways"][1]["address"],
        b.url.trim_start_matches("http://")
    );
    // Every write of both gateways is in the merged latency histogram of the endpoint.
    let writes = merged["latency"]["by_endpoint"]["/api/write"]["count"]
        .as_u64()
        .unwrap();
    assert_eq!(writes, 400);
    // The local view is today's shape, without the cluster's fields.
    assert!(mine.get("gateways").is_none() && mine["latency"]["overall"]["p99"].is_number());
    assert_eq!(mine["latency"]["by_endpoint"]["/api/write"]["count"], 150);
}

#[tokio::test]
async fn a_gateway_whose_figures_are_stale_is_named_and_the_view_is_partial() {
    let a = spawn_app().await;
    // Publishes once at start, then not for a minute: stale after 3 s, still heartbeating.
    let quiet = another_gateway(&a, |s| {
        s.analytics.publish_ms = 60_000;
        s.analytics.stale_ms = 120_000;
    })
    .await;
    let address = quiet.url.trim_start_matches("http://").to_owned();
    let url = a.url("/api/analytics/metrics?scope=cluster");
    let body = until(&a.client, url, "the quiet gateway named missing", |c| {
        c["partial"] == true
    })
    .await;
    assert_eq!(
        body["missing_gateways"].as_array().map(Vec::len),
        Some(1),
        "{body:#}"
    );
    assert_eq!(
        body["missing_gateways"][0]["address"],
        address.as_str(),
        "{body:#}"
    );
    let reason = body["missing_gateways"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("ms old"), "{reason}");
    assert_eq!(body["gateways"].as_array().map(Vec::len), Some(1));
    assert!(body["totals"]["requests"].is_u64());
    // The load view says the same.
    let load = get_json(&a.client, a.url("/api/shards/load")).await;
    assert_eq!(load["partial"], true);
    assert_eq!(load["missing_gateways"][0]["address"], address.as_str());
}

#[tokio::test]
async fn a_gateway_that_stopped_stays_named_while_the_window_lacks_its_requests() {
    let a = spawn_app().await;
    let b = another_gateway(&a, |_| {}).await;
    let address = b.url.trim_start_matches("http://").to_owned();
    let url = a.url("/api/analytics/metrics?scope=cluster&window=60s");
    until(
        &a.client,
        url.clone(),
        "both gateways in the cluster view",
        |c| c["gateways"].as_array().is_some_and(|g| g.len() == 2),
    )
    .await;
    // B stops: its heartbeat and its figures stop with it, and the map soon no longer
    // lists it as live (metadata.gateway_ttl_ms, 5 s). The last minute still lacks its
    // requests: both views stay partial and name it, past the TTL.
    drop(b);
    let stopped = Instant::now();
    until(&a.client, url.clone(), "the stopped gateway named", |c| {
        c["partial"] == true
    })
    .await;
    let mut reasons: Vec<String> = Vec::new();
    while stopped.elapsed() < Duration::from_secs(9) {
        for view in [
            get_json(&a.client, url.clone()).await,
            get_json(&a.client, a.url("/api/shards/load")).await,
        ] {
            assert_eq!(
                view["partial"],
                true,
                "whole {:?} after B stopped: {view:#}",
                stopped.elapsed()
            );
            assert_eq!(
                view["missing_gateways"].as_array().map(Vec::len),
                Some(1),
                "{view:#}"
            );
            assert_eq!(view["missing_gateways"][0]["address"], address.as_str());
            assert_eq!(view["gateways"].as_array().map(Vec::len), Some(1));
            let reason = view["missing_gateways"][0]["reason"].as_str().unwrap();
            let kind = reason.split(':').next().unwrap().to_owned();
            if reasons.last() != Some(&kind) {
                reasons.push(kind);
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        reasons.last().map(String::as_str),
        Some("no longer live in the map (stopped?)"),
        "{reasons:?}"
    );
    // A view of a shorter window than B has been gone is whole again: nothing of B's
    // is in it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let short = get_json(
        &a.client,
        a.url("/api/analytics/metrics?scope=cluster&window=5s"),
    )
    .await;
    assert_eq!(short["partial"], false, "{short:#}");
    assert_eq!(short["missing_gateways"], json!([]));
}

#[tokio::test]
async fn a_hot_key_leads_the_load_per_slot_with_its_shard() {
    let app = spawn_app_with(|_| {}).await;
    writes(&app.client, &app.address, "hot-tenant", 60).await;
    for i in 0..6 {
        writes(&app.client, &app.address, &format!("cold-{i}"), 2).await;
    }
    let hot_slot = slot_of(&app, "hot-tenant");
    let hot_shard = app.shard_of("hot-tenant").0;
    let body = until(
        &app.client,
        app.url("/api/shards/load?scope=local"),
        "the hot slot leading the 10 s window",
        |b| b["hot_slots"][0]["load"]["requests"] == 60,
    )
    .await;
    assert_eq!(body["scope"], "local");
    assert_eq!(body["slot_count"], 1024);
    assert_eq!(body["windows"], json!(["10s", "1m", "10m"]));
    let hot = &body["hot_slots"][0];
    assert_eq!(hot["slot"], hot_slot);
    assert_eq!(hot["shard"], hot_shard);
    assert!(hot["load"]["bytes_written"].as_u64().unwrap() > 60 * 40);
    assert!(hot["load"]["bytes_read"].as_u64().unwrap() > 60 * 40);
    assert!(hot["load"]["shard_micros"].as_u64().unwrap() > 0);
    assert!(hot["share_of_cluster"].as_f64().unwrap() > 0.8);
    assert_eq!(body["hot_keys"][0]["key"], "hot-tenant");
    assert_eq!(body["hot_keys"][0]["requests"], 60);
    assert_eq!(body["hot_keys"][0]["slot"], hot_slot);
    // The shard's figures are the sum of its slots'.
    let shard_10s = &body["shards"][hot_shard.to_string()]["10s"]["requests"];
    let slots_10s: u64 = body["slots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["shard"] == hot_shard)
        .map(|s| s["windows"]["10s"]["requests"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(shard_10s.as_u64(), Some(slots_10s));
    // Reads count too: the hot key's records, read back.
    for i in 0..10 {
        let res = app
            .read("hot-tenant", "users", &format!("hot-tenant-{i}"))
            .await;
        assert_eq!(res.status().as_u16(), 200);
    }
    let minute = |b: &Value| {
        b["slots"]
            .as_array()
            .and_then(|slots| slots.iter().find(|s| s["slot"] == hot_slot))
            .map(|s| s["windows"]["1m"]["requests"].clone())
    };
    let body = until(
        &app.client,
        app.url("/api/shards/load"),
        "the reads counted in the minute",
        |b| minute(b) == Some(json!(70)),
    )
    .await;
    assert_eq!(body["scope"], "cluster");
    assert_eq!(body["hot_keys"][0]["requests"], 70);
}

#[tokio::test]
async fn a_read_the_cache_answers_is_a_request_but_no_load_on_its_slot() {
    let app = spawn_app_with(|s| {
        s.cluster.cache.enabled = true;
        s.cluster.cache.timeout_ms = 100;
        s.cluster.cache.prefix = format!("sgtest-{}", uuid::Uuid::new_v4().simple());
    })
    .await;
    writes(&app.client, &app.address, "cached-tenant", 1).await;
    // Reads of the record until five are cache hits (the write filled the cache; a read
    // a shard answers would too).
    let (mut hits, mut from_shard) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(5);
    while hits < 5 {
        let res = app.read("cached-tenant", "users", "cached-tenant-0").await;
        assert_eq!(res.status().as_u16(), 200);
        match res.headers()["x-cache"].to_str().unwrap() {
            "hit" => hits += 1,
            _ => from_shard += 1,
        }
        assert!(Instant::now() < deadline, "no 5 cache hits within 5 s");
    }
    // Every second of those requests complete (the windows add completed seconds).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let hot_slot = slot_of(&app, "cached-tenant");
    let body = get_json(&app.client, app.url("/api/shards/load?scope=local")).await;
    let slot = body["slots"]
        .as_array()
        .and_then(|slots| slots.iter().find(|s| s["slot"] == hot_slot))
        .unwrap_or_else(|| panic!("slot {hot_slot} has no load: {body:#}"));
    // The write and the reads a shard answered; none of the hits.
    assert_eq!(
        slot["windows"]["1m"]["requests"],
        1 + from_shard,
        "{hits} hits, {from_shard} reads from the shard: {slot:#}"
    );
    assert_eq!(body["hot_keys"][0]["requests"], 1 + from_shard, "{body:#}");
    // The hits are requests all the same, in the analytics.
    let metrics = get_json(&app.client, app.url("/api/analytics/metrics")).await;
    assert_eq!(metrics["totals"]["cache"]["hits"], hits, "{metrics:#}");
    assert_eq!(
        metrics["latency"]["by_endpoint"]["/api/read"]["count"],
        from_shard + hits,
        "{metrics:#}"
    );
}

#[tokio::test]
async fn a_scope_other_than_local_or_cluster_is_a_problem_naming_it() {
    let app = spawn_app().await;
    for path in [
        "/api/analytics/metrics?scope=everything",
        "/api/analytics/metrics?scope=Cluster",
        "/api/shards/load?scope=",
    ] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        let problem = assert_problem(res, 400).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("scope is"), "{path}: {detail}");
    }
    let local = get_json(&app.client, app.url("/api/analytics/metrics?scope=local")).await;
    assert!(local.get("partial").is_none());
    let alone = get_json(&app.client, app.url("/api/analytics/metrics?scope=cluster")).await;
    assert_eq!(alone["partial"], false);
    assert_eq!(alone["gateways"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn the_cluster_views_ask_the_same_scopes_as_the_local_ones() {
    use crate::auth::{await_key, create_key, status_with};
    let app = spawn_app().await;
    let metrics = create_key(&app, "grafana", "metrics", None).await;
    let admin = create_key(&app, "operator", "admin", None).await;
    await_key(&app, &metrics).await;
    let cluster = "/api/analytics/metrics?scope=cluster";
    let load = "/api/shards/load";
    assert_eq!(status_with(&app, cluster, None).await, 401);
    assert_eq!(status_with(&app, load, None).await, 401);
    assert_eq!(status_with(&app, cluster, Some(&metrics)).await, 200);
    assert_eq!(
        status_with(&app, "/api/analytics/metrics", Some(&metrics)).await,
        200
    );
    // The load names keys: admin, as /api/shards.
    assert_eq!(status_with(&app, load, Some(&metrics)).await, 403);
    assert_eq!(status_with(&app, "/api/shards", Some(&metrics)).await, 403);
    assert_eq!(status_with(&app, load, Some(&admin)).await, 200);
    assert_eq!(
        status_with(&app, cluster, Some(&admin)).await,
        status_with(&app, "/api/analytics/metrics", Some(&admin)).await
    );
}
