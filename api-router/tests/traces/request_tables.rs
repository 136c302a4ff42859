//! The trace ids beside a gateway's own request tables: `GET /api/analytics/errors` and
//! `GET /api/analytics/slowest` (the dashboard's "Recent errors" and "Slowest requests")
//! name the trace each sampled request was recorded under, so a failure or a slow
//! request seen there is one lookup away in the trace backend. A request the sampler
//! left out, or any request of a gateway that exports nothing, has none.

use std::time::Duration;

use serde_json::{json, Value};
use test_app::wrk::Bench;

use super::{client, user};

const FAILED_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const WRITE_TRACE: &str = "5b8aa5a2d2c872e8321cf37308d69df2";
const UNSAMPLED_TRACE: &str = "6e0c63257de34c92bf9efcd03927272e";
const CALLER_SPAN: &str = "b7ad6b7169203331";

async fn get_json(bench: &Bench, path: &str) -> Value {
    let res = client().get(bench.url(path)).send().await.unwrap();
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

/// The entries of `list` whose `trace_id` is `trace`.
fn with_trace<'a>(list: &'a Value, trace: &str) -> Vec<&'a Value> {
    list.as_array()
        .expect("a list")
        .iter()
        .filter(|e| e["trace_id"] == trace)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_and_the_slowest_requests_name_the_trace_they_were_recorded_under() {
    // Arrange: a traced gateway whose collector is down (spans are dropped; the ids
    // are the gateway's all the same).
    let bench = Bench::start_with(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1"),
        ("OTEL_TRACES_SAMPLER", "parentbased_always_off"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "200"),
    ])
    .await;
    let http = client();
    let parent = |trace: &str, flags: &str| format!("00-{trace}-{CALLER_SPAN}-{flags}");

    // Act: a write refused (no table), a write that succeeds, both sampled by the
    // caller; a write the caller asks not to sample.
    let refused = http
        .post(bench.url("/api/write"))
        .header("x-shard-key", "user_1")
        .header("traceparent", parent(FAILED_TRACE, "01"))
        .json(&json!({"id": "rec_1", "data": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    for (trace, flags) in [(WRITE_TRACE, "01"), (UNSAMPLED_TRACE, "00")] {
        let res = http
            .post(bench.url("/api/write"))
            .header("x-shard-key", "user_1")
            .header("traceparent", parent(trace, flags))
            .json(&user(1))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
    }

    // Assert: the refused write among the errors, under its trace.
    let errors = get_json(&bench, "/api/analytics/errors?limit=50").await;
    let failed = with_trace(&errors, FAILED_TRACE);
    assert_eq!(failed.len(), 1, "{errors:#}");
    assert_eq!(failed[0]["status"], 422);
    assert_eq!(failed[0]["endpoint"], "/api/write");

    // Every request of the last minute is among the slowest (fewer than 20 a minute
    // here): the sampled ones with their trace, the unsampled one without.
    let slowest = get_json(&bench, "/api/analytics/slowest?window=1m&limit=100").await;
    let list = slowest.as_array().unwrap();
    for trace in [FAILED_TRACE, WRITE_TRACE] {
        assert_eq!(with_trace(&slowest, trace).len(), 1, "{trace}: {slowest:#}");
    }
    assert!(
        with_trace(&slowest, UNSAMPLED_TRACE).is_empty(),
        "{slowest:#}"
    );
    let writes: Vec<&Value> = list
        .iter()
        .filter(|r| r["endpoint"] == "/api/write" && r["method"] == "POST")
        .collect();
    assert_eq!(writes.len(), 3, "{slowest:#}");
    assert_eq!(
        writes
            .iter()
            .filter(|r| r.get("trace_id").is_none())
            .count(),
        1,
        "{slowest:#}"
    );
    let latencies: Vec<f64> = list
        .iter()
        .map(|r| r["latency_ms"].as_f64().unwrap())
        .collect();
    assert!(
        latencies.windows(2).all(|w| w[0] >= w[1]) && latencies.iter().all(|l| *l > 0.0),
        "slowest first: {latencies:?}"
    );

    // A limit out of range is refused, naming it.
    let bad = http
        .get(bench.url("/api/analytics/slowest?limit=0"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        bad.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let problem: Value = bad.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("limit"),
        "{problem}"
    );
}
