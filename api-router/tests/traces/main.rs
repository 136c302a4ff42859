//! OpenTelemetry traces end to end: the real `api-router` binary, started with the
//! standard `OTEL_*` variables, exports its spans over OTLP/HTTP to a receiver inside
//! the test ([`receiver`], test-support's, which the admin CLI's tests share), which
//! decodes them as a collector would.
//!
//! - A write sent with a `traceparent` is exported as a server span of the caller's
//!   trace, under the caller's span, with its route, method, status and the service's
//!   name; the answer's `traceresponse` names that trace and span; the log lines name
//!   them too.
//! - Without a `traceparent`, or with a malformed one, a request starts a trace of its
//!   own and is served as ever.
//! - A collector that is down fails no request and slows none past its bound: its
//!   spans are dropped, and `/metrics` counts them.
//! - A read served from the cache shows its `cache lookup` as a hit ([`cache_spans`]).
//! - A list at one cut shows the snapshot fence taken, then released ([`fence_spans`]).
//! - `/metrics` in OpenMetrics names a sampled request's trace as the exemplar of its
//!   latency bucket ([`exemplars`]).
//! - The request path's spans ([`request_path`]): routing, connection waits, each trip
//!   to a server with its real port and backend pid, and group commits linked both ways
//!   with the writes they carried.
//! - A transaction's prepares, decision and commits under its request's span, at the
//!   default log level too, with or without the caller's `traceparent`
//!   ([`transaction_spans`]).
//! - A caller without a valid key, when keys exist, does not decide whether its request
//!   is recorded nor put it in its trace: the gateway's sampler decides, and the
//!   caller's context is at most a link ([`unauthenticated`]).
//! - A group that carried a recorded write is recorded too, at any ratio
//!   ([`batch_sampling`]).
//! - A statement a shard refuses is a failed client span with `error.type` and its
//!   SQLSTATE (`db.response.status_code`); a 5xx answer's server span has `error.type`,
//!   a 4xx's none ([`failed_calls`]).
//! - `OTEL_EXPORTER_OTLP_COMPRESSION=gzip` sends every export gzipped, and it decodes
//!   ([`compression`]).
//! - `OTEL_SDK_DISABLED=true` and `OTEL_TRACES_EXPORTER=none` send the collector
//!   nothing, though the environment names it ([`sdk_off`]).
//! - Moves and the balancer ([`moves`]): a move the automatic balancer runs is a trace
//!   of its own, its phases in order, linked both ways with the balancer's round that
//!   decided it, a trace of its own too.

mod batch_sampling;
mod cache_spans;
mod compression;
mod exemplars;
mod failed_calls;
mod fence_spans;
mod moves;
mod request_path;
mod request_tables;
mod sdk_off;
mod transaction_spans;
mod unauthenticated;

use std::time::{Duration, Instant};

use serde_json::json;
use test_app::wrk::Bench;
use test_support::otlp_receiver as receiver;

use receiver::Receiver;

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// How long an exported span may take to reach the receiver (batches leave every
/// 100 ms here).
const ARRIVAL: Duration = Duration::from_secs(15);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The `traceresponse` header's trace id, span id and flags.
fn traceresponse(res: &reqwest::Response) -> (String, String, String) {
    let value = res
        .headers()
        .get("traceresponse")
        .unwrap_or_else(|| panic!("no traceresponse header: {:?}", res.headers()))
        .to_str()
        .unwrap()
        .to_owned();
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "{value}");
    assert_eq!(parts[0], "00", "{value}");
    assert_eq!(parts[1].len(), 32, "{value}");
    assert_eq!(parts[2].len(), 16, "{value}");
    (parts[1].into(), parts[2].into(), parts[3].into())
}

/// Whether a received span is a server span (a request's own; the request path's
/// spans share its trace).
fn is_server(span: &receiver::Received) -> bool {
    span.span.kind == 2
}

fn user(n: u32) -> serde_json::Value {
    json!({
        "table": "users",
        "id": format!("rec_{n}"),
        "data": {"user_id": format!("user_{n}"), "name": "Anjali Mueller",
                 "email": format!("meaghan{n}@example.net"), "tier": "pro",
                 "lifetime_value_cents": 1200}
    })
}

/// A counter's value in the `/metrics` text, 0 when absent.
fn counter(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Spans dropped, for any reason.
fn dropped(metrics: &str) -> f64 {
    counter(
        metrics,
        "shardgate_trace_spans_dropped_total{reason=\"queue_full\"}",
    ) + counter(
        metrics,
        "shardgate_trace_spans_dropped_total{reason=\"export_failed\"}",
    )
}

/// The `/metrics` text once `ready` accepts it (within 20 s).
async fn metrics_until(bench: &Bench, ready: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let text = client()
            .get(bench.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if ready(&text) {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not counted within 20 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A gateway exporting every trace to `receiver` in batches every 100 ms, with `extra`
/// on top of its environment.
async fn traced_gateway(receiver: &Receiver, extra: &[(&str, &str)]) -> Bench {
    let endpoint = receiver.endpoint();
    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_TRACES_SAMPLER", "parentbased_always_on"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    env.extend_from_slice(extra);
    Bench::start_with(&env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_server_spans_of_the_callers_trace_and_name_it_back() {
    // Arrange
    let receiver = Receiver::start();
    let bench = traced_gateway(
        &receiver,
        &[
            ("OTEL_SERVICE_NAME", "shardgate-e2e"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment.name=test",
            ),
            (
                "RUST_LOG",
                "warn,api_router::startup=info,api_router::server::request_id=debug",
            ),
        ],
    )
    .await;
    let http = client();

    // Act: a write under the caller's trace.
    let res = http
        .post(bench.url("/api/write"))
        .header("x-shard-key", "user_1")
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .header("tracestate", "caller=1")
        .json(&user(1))
        .send()
        .await
        .unwrap();

    // Assert: the answer names the caller's trace and a span of the gateway's own.
    let status = res.status().as_u16();
    assert!(res.status().is_success(), "write: {status}");
    let (trace, span, flags) = traceresponse(&res);
    assert_eq!(trace, CALLER_TRACE);
    assert_ne!(span, CALLER_SPAN);
    assert_eq!(flags, "01", "the caller's sampled flag is followed");

    // The exported server span.
    let exported = receiver
        .span(ARRIVAL, |s| s.trace_id() == CALLER_TRACE && is_server(s))
        .await;
    assert_eq!(
        exported.span_id(),
        span,
        "traceresponse names the server span"
    );
    assert_eq!(exported.parent_span_id(), CALLER_SPAN);
    assert_eq!(exported.span.name, "POST /api/write");
    assert_eq!(exported.span.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(exported.span.trace_state, "caller=1");
    assert_eq!(
        exported.attribute("http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        exported.attribute("http.route").as_deref(),
        Some("/api/write")
    );
    assert_eq!(
        exported.attribute("url.path").as_deref(),
        Some("/api/write")
    );
    assert_eq!(
        exported.attribute("http.response.status_code"),
        Some(status.to_string())
    );
    assert_eq!(exported.attribute("url.scheme").as_deref(), Some("http"));
    assert_eq!(
        exported.resource_attribute("service.name").as_deref(),
        Some("shardgate-e2e")
    );
    assert_eq!(
        exported
            .resource_attribute("deployment.environment.name")
            .as_deref(),
        Some("test")
    );
    // Only the server span: the request id's span is for the log lines.
    assert!(
        exported.span.end_time_unix_nano > exported.span.start_time_unix_nano,
        "{exported:?}"
    );

    // The log lines of the request name its trace and span.
    let logs = bench.gateway.output();
    assert!(
        logs.lines()
            .any(|l| l.contains(&format!("trace_id={CALLER_TRACE}"))
                && l.contains(&format!("span_id={span}"))),
        "no log line names the trace:\n{logs}"
    );

    // A request without a traceparent starts a trace of its own (a strong read: a
    // replica may not have replayed the write yet).
    let res = http
        .get(bench.url("/api/read?table=users&id=rec_1&consistency=strong"))
        .header("x-shard-key", "user_1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let (fresh, fresh_span, _) = traceresponse(&res);
    assert_ne!(fresh, CALLER_TRACE);
    let root = receiver
        .span(ARRIVAL, |s| s.trace_id() == fresh && is_server(s))
        .await;
    assert_eq!(root.span_id(), fresh_span);
    assert_eq!(root.parent_span_id(), "", "a root span");
    assert_eq!(root.span.name, "GET /api/read");
    assert_eq!(root.attribute("http.route").as_deref(), Some("/api/read"));
    assert_eq!(
        root.attribute("http.response.status_code").as_deref(),
        Some("200")
    );

    // Malformed traceparents are ignored (W3C): a fresh trace, never an error.
    for bad in [
        "00-ZZf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "not a traceparent",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ] {
        let res = http
            .get(bench.url("/api/health/live"))
            .header("traceparent", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "traceparent {bad:?}");
        let (trace, _, _) = traceresponse(&res);
        assert_ne!(trace, CALLER_TRACE, "{bad:?}");
        assert_ne!(trace, "00000000000000000000000000000000", "{bad:?}");
        let root = receiver
            .span(ARRIVAL, |s| s.trace_id() == trace && is_server(s))
            .await;
        assert_eq!(root.parent_span_id(), "", "{bad:?} was taken as a parent");
    }

    // /metrics counts the exported spans (the six above at least); none dropped.
    let text = metrics_until(&bench, |text| {
        counter(text, "shardgate_trace_spans_exported_total") >= 6.0
    })
    .await;
    assert_eq!(dropped(&text), 0.0, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_costs_only_dropped_spans() {
    // Arrange: an endpoint at a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let bench = Bench::start_with(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_TRACES_SAMPLER", "always_on"),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "16"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "16"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
    ])
    .await;
    let http = client();

    // Act: requests at once and one after another, every one traced.
    let mut slowest = Duration::ZERO;
    for round in 0..20 {
        let started = Instant::now();
        let answers = futures_util::future::join_all((0..10).map(|_| {
            http.get(bench.url("/api/health/live"))
                .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
                .send()
        }))
        .await;
        slowest = slowest.max(started.elapsed());
        for answer in answers {
            let answer = answer.unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert_eq!(answer.status().as_u16(), 200, "round {round}");
            assert_eq!(traceresponse(&answer).0, CALLER_TRACE);
        }
    }

    // Assert: no request waited on the collector (each export may retry for up to its
    // 500 ms timeout), and the lost spans are counted, by reason.
    assert!(
        slowest < Duration::from_secs(1),
        "ten requests took {slowest:?} with the collector down"
    );
    // Every request's span is lost, and counted: those that found the queue full, and
    // those of the batches the collector never took.
    let text = metrics_until(&bench, |text| dropped(text) >= 200.0).await;
    assert!(
        counter(
            &text,
            "shardgate_trace_spans_dropped_total{reason=\"export_failed\"}"
        ) > 0.0,
        "{text}"
    );
    assert_eq!(
        counter(&text, "shardgate_trace_spans_exported_total"),
        0.0,
        "{text}"
    );
}
