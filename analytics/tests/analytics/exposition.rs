//! `GET /metrics`: the text parses as Prometheus exposition and carries the counts.

use std::time::Duration;

use analytics::recording::{CacheEvent, ErrorClass};
use prometheus_parse::{Sample, Scrape, Value};

use crate::helpers::{failed_write, read, write, TestRecorder};

fn scrape(recorder: &TestRecorder) -> Scrape {
    let text = recorder.analytics.prometheus_text();
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    Scrape::parse(lines).expect("the exposition parses")
}

/// The one sample of `metric` whose labels include every pair in `labels`.
fn sample<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> &'a Sample {
    let matching: Vec<&Sample> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert_eq!(matching.len(), 1, "{metric} {labels:?}: {matching:?}");
    matching[0]
}

fn scalar(sample: &Sample) -> f64 {
    match sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        ref other => panic!("not a scalar: {other:?}"),
    }
}

fn recorded() -> TestRecorder {
    let recorder = TestRecorder::new();
    for ms in [1, 2, 30] {
        recorder.record(0, &read(ms));
    }
    recorder.record(0, &write(3, 200));
    recorder.record(0, &failed_write(3, 504, ErrorClass::Timeout, "deadline"));
    let at = recorder.at(0);
    let analytics = &recorder.analytics;
    analytics.record_cache_at(CacheEvent::Hit, Some(Duration::from_micros(400)), at);
    analytics.record_cache_at(CacheEvent::Miss, Some(Duration::from_micros(900)), at);
    analytics.set_replica_lag(0, "replica-0:5432", Some(4096), Some(250), true);
    recorder
}

#[test]
fn request_counters_carry_every_label() {
    let scrape = scrape(&recorded());

    let reads = sample(
        &scrape,
        "shardgate_http_requests_total",
        &[
            ("endpoint", "/api/read"),
            ("method", "GET"),
            ("shard", "0"),
            ("role", "replica"),
            ("outcome", "success"),
        ],
    );
    assert_eq!(scalar(reads), 3.0);
    let timeouts = sample(
        &scrape,
        "shardgate_http_requests_total",
        &[("shard", "3"), ("role", "none"), ("outcome", "timeout")],
    );
    assert_eq!(scalar(timeouts), 1.0);
}

#[test]
fn the_duration_histogram_has_cumulative_buckets_in_seconds() {
    let scrape = scrape(&recorded());

    let reads = sample(
        &scrape,
        "shardgate_http_request_duration_seconds",
        &[("endpoint", "/api/read")],
    );
    let Value::Histogram(buckets) = &reads.value else {
        panic!("not a histogram: {reads:?}");
    };
    let at = |bound: f64| {
        buckets
            .iter()
            .find(|b| b.less_than == bound)
            .map(|b| b.count)
    };
    assert_eq!(at(0.001), Some(1.0));
    assert_eq!(at(0.0025), Some(2.0));
    assert_eq!(at(0.05), Some(3.0));
    assert_eq!(at(f64::INFINITY), Some(3.0));
    let sum = sample(
        &scrape,
        "shardgate_http_request_duration_seconds_sum",
        &[("endpoint", "/api/read")],
    );
    assert!((scalar(sum) - 0.033).abs() < 1e-9);
    let count = sample(
        &scrape,
        "shardgate_http_request_duration_seconds_count",
        &[("endpoint", "/api/read")],
    );
    assert_eq!(scalar(count), 3.0);
}

#[test]
fn errors_rows_cache_and_replicas_are_exposed() {
    let scrape = scrape(&recorded());

    let value = |metric: &str, labels: &[(&str, &str)]| scalar(sample(&scrape, metric, labels));
    assert_eq!(
        value("shardgate_errors_total", &[("class", "timeout")]),
        1.0
    );
    assert_eq!(value("shardgate_errors_total", &[("class", "client")]), 0.0);
    assert_eq!(
        value("shardgate_rows_written_total", &[("shard", "3")]),
        1.0
    );
    assert_eq!(value("shardgate_rows_read_total", &[("shard", "0")]), 3.0);
    assert_eq!(
        value("shardgate_cache_events_total", &[("event", "hit")]),
        1.0
    );
    assert_eq!(
        value("shardgate_cache_events_total", &[("event", "miss")]),
        1.0
    );
    let server = [("shard", "0"), ("server", "replica-0:5432")];
    assert_eq!(value("shardgate_replica_lag_bytes", &server), 4096.0);
    assert_eq!(value("shardgate_replica_lag_seconds", &server), 0.25);
    assert_eq!(value("shardgate_replica_healthy", &server), 1.0);
    assert!(value("shardgate_uptime_seconds", &[]) >= 0.0);
    let redis = sample(&scrape, "shardgate_cache_redis_duration_seconds_count", &[]);
    assert_eq!(scalar(redis), 2.0);
}

#[test]
fn every_family_has_help_and_type() {
    let text = recorded().analytics.prometheus_text();

    for family in [
        "shardgate_http_requests_total counter",
        "shardgate_http_request_duration_seconds histogram",
        "shardgate_errors_total counter",
        "shardgate_cache_events_total counter",
        "shardgate_replica_lag_bytes gauge",
    ] {
        assert!(text.contains(&format!("# TYPE {family}\n")), "{family}");
    }
    assert_eq!(
        text.matches("# HELP ").count(),
        text.matches("# TYPE ").count()
    );
}

#[test]
fn an_idle_recorder_still_exposes_valid_text() {
    let recorder = TestRecorder::new();
    let scrape = scrape(&recorder);
    assert!(scrape
        .samples
        .iter()
        .any(|s| s.metric == "shardgate_errors_total"));
    assert!(!scrape
        .samples
        .iter()
        .any(|s| s.metric == "shardgate_http_requests_total"));
}
