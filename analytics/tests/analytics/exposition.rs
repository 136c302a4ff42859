//! `GET /metrics`: the text parses as Prometheus exposition and carries the counts; in
//! OpenMetrics, it parses as the standard's text and names sampled requests' traces as
//! exemplars on their latency buckets.

use std::time::Duration;

use analytics::exposition::{
    BatchSizes, ChangeStreams, Format, GatewayFigures, HeldRequests, LimitedCount, MapGauges,
    MoveProgress, ProcessStats, ShardTerm, TraceSpans, TransactionStats,
};
use analytics::recording::{CacheEvent, ErrorClass, RequestSample};
use openmetrics_parser::openmetrics::parse_openmetrics;
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

/// A gateway's figures with one of every family it passes at scrape time.
struct Gateway {
    moves: Vec<MoveProgress>,
    limited: Vec<LimitedCount>,
    map: MapGauges,
    transactions: TransactionStats,
    batches: Vec<BatchSizes>,
    held: HeldRequests,
    changes: ChangeStreams,
    spans: TraceSpans,
    process: ProcessStats,
}

impl Gateway {
    fn new() -> Self {
        Self {
            moves: vec![MoveProgress {
                id: 7,
                source: 0,
                target: 1,
                phase: "copying".into(),
                slots: 16,
                rows_total: 100,
                rows_copied: 40,
                rows_behind: 0,
                eta_secs: Some(3.5),
            }],
            limited: vec![LimitedCount {
                key: "reporting \"nightly\"".into(),
                limit: "rate",
                count: 2,
            }],
            map: MapGauges {
                version: 4,
                gateways_live: Some(2),
                shards: vec![ShardTerm {
                    shard: 0,
                    term: 2,
                    failovers: 1,
                    switchovers: 0,
                }],
            },
            transactions: TransactionStats {
                ended: vec![("two-phase", "committed", 3)],
                in_doubt: 0,
                oldest_in_doubt_secs: 0.0,
            },
            batches: vec![BatchSizes {
                kind: "write",
                shard: 0,
                server: "127.0.0.1:25432".into(),
                cumulative: vec![(1, 2), (4, 3)],
                batches: 3,
                requests: 6,
            }],
            // As `prometheus_text_of_gateway` passes them: none held.
            held: HeldRequests::default(),
            changes: ChangeStreams::default(),
            spans: TraceSpans {
                exported: 9,
                dropped_queue_full: 0,
                dropped_export_failed: 1,
            },
            process: ProcessStats {
                cpu_seconds: 3.25,
                resident_bytes: 20_480_000.0,
                virtual_bytes: 1e9,
                start_time_seconds: 1_764_000_123.45,
                open_fds: 12.0,
                max_fds: Some(20000.0),
            },
        }
    }

    fn figures(&self) -> GatewayFigures<'_> {
        GatewayFigures {
            moves: &self.moves,
            limited: &self.limited,
            map: &self.map,
            transactions: &self.transactions,
            batches: &self.batches,
            held: &self.held,
            changes: &self.changes,
            memory_tier: None,
            spans: Some(&self.spans),
            process: Some(&self.process),
        }
    }
}

const SAMPLED: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[test]
fn the_text_format_is_what_it_was() {
    let recorder = recorded();
    let gateway = Gateway::new();

    // The process's figures are the gateway's alone (`prometheus_text_of_gateway` has
    // none).
    let figures = GatewayFigures {
        process: None,
        ..gateway.figures()
    };
    let text = recorder
        .analytics
        .exposition_of_gateway(Format::Prometheus, &figures);

    let before = recorder.analytics.prometheus_text_of_gateway(
        &gateway.moves,
        &gateway.limited,
        &gateway.map,
        &gateway.transactions,
        &gateway.batches,
    ) + &analytics::exposition::traces::text(&gateway.spans);
    // Everything but the uptime, which moved between the two scrapes.
    let timeless = |text: &str| {
        text.lines()
            .filter(|l| !l.starts_with("shardgate_uptime_seconds "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(timeless(&text), timeless(&before));
    assert!(!text.contains("# EOF"));
    assert!(
        parse_openmetrics(&text).is_err(),
        "0.0.4 text is no OpenMetrics"
    );
    assert!(!text.contains(" # {"), "no exemplar in the text format");
}

#[test]
fn openmetrics_parses_whole_and_names_sampled_requests_on_their_buckets() {
    // Arrange: a sampled read of 30 ms (bucket le=0.05), one of 2 ms sampled as
    // another trace, and unsampled reads in both buckets.
    let recorder = recorded();
    recorder.record(
        10,
        &RequestSample {
            trace_id: Some(SAMPLED),
            ..read(30)
        },
    );
    recorder.record(
        20,
        &RequestSample {
            trace_id: Some("0af7651916cd43dd8448eb211c80319c"),
            ..read(2)
        },
    );
    recorder.record(30, &read(2));
    recorder.record(40, &read(40));
    let gateway = Gateway::new();

    // Act
    let text = recorder
        .analytics
        .exposition_of_gateway(Format::OpenMetrics, &gateway.figures());

    // Assert: a parser of the standard takes it whole.
    let parsed = parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    for family in [
        "shardgate_http_requests",
        "shardgate_http_request_duration_seconds",
        "shardgate_batch_size",
        "shardgate_limited_requests",
        "shardgate_map_version",
        "shardgate_failovers",
        "shardgate_trace_spans_dropped",
        "process_cpu_seconds",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
    ] {
        assert!(parsed.families.contains_key(family), "{family}\n{text}");
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
    // The sampled reads' traces on their buckets, with their latency and time.
    let bucket = |le: &str| {
        text.lines()
            .find(|l| {
                l.starts_with(
                    "shardgate_http_request_duration_seconds_bucket{endpoint=\"/api/read\"",
                ) && l.contains(&format!("le=\"{le}\""))
            })
            .unwrap_or_else(|| panic!("no bucket {le}:\n{text}"))
    };
    assert!(
        bucket("0.05").ends_with(&format!(
            "}} 7 # {{trace_id=\"{SAMPLED}\"}} 0.03 1700000000.010"
        )),
        "{}",
        bucket("0.05")
    );
    assert!(
        bucket("0.0025").ends_with(
            "} 4 # {trace_id=\"0af7651916cd43dd8448eb211c80319c\"} 0.002 1700000000.020"
        ),
        "{}",
        bucket("0.0025")
    );
    // No exemplar where no sampled request fell, nor on any other family.
    assert!(!bucket("0.001").contains('#'), "{}", bucket("0.001"));
    assert!(!bucket("0.1").contains('#'), "{}", bucket("0.1"));
    assert_eq!(text.matches(" # {").count(), 2, "{text}");
}
