//! The report's JSON and OpenAPI shapes, as the gateway will publish them.

use analytics::recording::ErrorEvent;
use analytics::reports::MetricsReport;
use utoipa::OpenApi;

use crate::helpers::{read, TestRecorder};

#[derive(OpenApi)]
#[openapi(components(schemas(MetricsReport, ErrorEvent)))]
struct Doc;

#[test]
fn the_openapi_document_describes_every_nested_type() {
    let json = Doc::openapi().to_json().expect("openapi serializes");
    for schema in [
        "MetricsReport",
        "Totals",
        "Throughput",
        "LatencyReport",
        "LatencySummary",
        "ErrorSummary",
        "ShardReport",
        "RoleCounts",
        "CacheCounts",
        "ReplicaLag",
        "ReplicaSummary",
        "ErrorEvent",
        "ErrorClass",
    ] {
        assert!(json.contains(&format!("\"{schema}\"")), "{schema} missing");
    }
}

#[test]
fn the_report_serializes_with_the_documented_keys() {
    let recorder = TestRecorder::new();
    recorder.record(0, &read(1));
    let report = recorder.report(1_000, 60);

    let json = serde_json::to_value(&report).expect("report serializes");

    for key in [
        "uptime_secs",
        "window_secs",
        "totals",
        "throughput",
        "latency",
        "errors",
        "shards",
        "cache",
        "replicas",
    ] {
        assert!(json.get(key).is_some(), "{key} missing");
    }
    // 1 ms sits in a 4 µs HDR bucket; percentiles report its top, max is exact.
    assert_eq!(json["latency"]["overall"]["p99"], 1.003);
    assert_eq!(json["latency"]["overall"]["max"], 1.0);
    assert_eq!(json["shards"]["0"]["by_role"]["replica"], 1);
    assert_eq!(json["generated_at"], "2023-11-14T22:13:21Z");
    let back: MetricsReport = serde_json::from_value(json).expect("report deserializes");
    assert_eq!(back, report);
}
