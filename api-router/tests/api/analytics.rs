//! The analytics endpoints report exactly the requests that were made.

use serde_json::{json, Value};
use test_app::spawn_app;

#[tokio::test]
async fn metrics_errors_and_prometheus_count_exactly_the_requests_made() {
    let app = spawn_app().await;
    for i in 0..5 {
        let res = app
            .write(
                &format!("m{i}"),
                &json!({"table": "users", "id": "a", "data": {}}),
            )
            .await;
        assert_eq!(res.status().as_u16(), 201);
    }
    for i in 0..3 {
        let res = app.read_strong(&format!("m{i}"), "users", "a").await;
        assert_eq!(res.status().as_u16(), 200);
    }
    for _ in 0..2 {
        let res = app
            .client
            .post(app.url("/api/write"))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 400);
    }
    assert_eq!(
        app.read_strong("m0", "users", "missing")
            .await
            .status()
            .as_u16(),
        404
    );
    // Windows hold completed seconds (totals are live): let the current second close.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let metrics: Value = app.get_json("/api/analytics/metrics?window=60s").await;
    let errors: Value = app.get_json("/api/analytics/errors?count=10").await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let totals = &metrics["totals"];
    assert_eq!(totals["requests"], 11, "{totals}");
    assert_eq!(totals["errors"], 3);
    assert_eq!(totals["errors_by_class"]["client"], 3);
    assert_eq!(totals["rows_written"], 5);
    assert_eq!(totals["rows_read"], 3);
    assert_eq!(metrics["latency"]["overall"]["count"], 11);
    assert_eq!(metrics["latency"]["by_endpoint"]["/api/write"]["count"], 7);
    let by_shard_writes: u64 = metrics["shards"]
        .as_object()
        .unwrap()
        .values()
        .map(|s| s["writes"].as_u64().unwrap_or(0))
        .sum();
    assert!(
        by_shard_writes >= 5,
        "successful writes are attributed to shards"
    );

    let errors = errors.as_array().unwrap();
    assert_eq!(errors.len(), 3);
    assert_eq!(errors[0]["status"], 404, "newest first");
    assert_eq!(errors[0]["endpoint"], "/api/read");
    assert_eq!(errors[1]["status"], 400);
    assert!(errors[1]["message"]
        .as_str()
        .unwrap()
        .contains("x-shard-key"));

    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    let requests: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "shardgate_http_requests_total")
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum();
    assert_eq!(requests, 13.0, "11 requests + the metrics and errors reads");
    assert!(scrape.samples.iter().any(|s| s
        .metric
        .starts_with("shardgate_http_request_duration_seconds")));
}

/// The analytics limits come from the typed configuration like every other limit.
#[tokio::test]
async fn the_error_ring_keeps_what_the_configuration_says() {
    let app = test_app::spawn_app_with(|s| s.analytics.error_capacity = 2).await;
    for i in 0..5 {
        let res = app.get("k", &format!("/api/read?table=nope{i}&id=x")).await;
        assert_eq!(res.status().as_u16(), 422);
    }
    let errors: Value = app.get_json("/api/analytics/errors?limit=100").await;
    let errors = errors.as_array().unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
}

/// `limit` and its alias `count` are whole numbers from 1 to 1000, as the spec says,
/// even when both are given and `limit` wins: anything else is a 400 naming the one
/// that is wrong.
#[tokio::test]
async fn the_error_list_refuses_a_limit_or_count_that_is_not_a_whole_number() {
    let app = spawn_app().await;
    for (query, named) in [
        ("count=false&limit=1", "count"),
        ("count=false", "count"),
        ("count=1.5", "count"),
        ("count=0", "count"),
        ("limit=1&count=1001", "count"),
        ("limit=-1", "limit"),
        ("limit=ten&count=10", "limit"),
    ] {
        let res = app
            .client
            .get(app.url(&format!("/api/analytics/errors?{query}")))
            .send()
            .await
            .unwrap();
        let problem = test_app::assert_problem(res, 400).await;
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(&format!("{named} is \"")),
            "{query}: {detail}"
        );
    }
    for query in ["count=2", "limit=2", "limit=2&count=3"] {
        let res = app
            .client
            .get(app.url(&format!("/api/analytics/errors?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "{query}");
    }
}
