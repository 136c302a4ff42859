//! Error counting in the report, and the ring of recent error events.

use analytics::recording::{ErrorClass, RequestSample};
use analytics::AnalyticsConfig;

use crate::helpers::{failed_write, read, TestRecorder};

#[test]
fn errors_are_counted_by_class_and_endpoint_with_a_rate() {
    let recorder = TestRecorder::new();
    for _ in 0..6 {
        recorder.record(100, &read(1));
    }
    recorder.record(
        200,
        &failed_write(0, 409, ErrorClass::Client, "duplicate key"),
    );
    recorder.record(
        300,
        &failed_write(1, 503, ErrorClass::ShardUnavailable, "refused"),
    );
    recorder.record(400, &failed_write(1, 504, ErrorClass::Timeout, "deadline"));
    let untyped = RequestSample {
        status: 500,
        ..read(1)
    };
    recorder.record(500, &untyped);

    let report = recorder.report(5_000, 5);

    assert_eq!(report.errors.count, 4);
    assert_eq!(report.errors.rate, 0.4);
    assert_eq!(report.errors.per_sec, 0.8);
    let by_class = report.errors.by_class;
    assert_eq!(
        (
            by_class.client,
            by_class.shard_unavailable,
            by_class.timeout,
            by_class.internal
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(report.errors.by_endpoint["/api/write"], 3);
    assert_eq!(report.errors.by_endpoint["/api/read"], 1);
    assert_eq!(report.shards["1"].errors, 2);
    assert_eq!(report.latency.by_outcome["timeout"].count, 1);
    assert_eq!(report.totals.errors_by_class, by_class);
}

#[test]
fn recent_errors_are_newest_first_and_bounded() {
    let recorder = TestRecorder::with(AnalyticsConfig {
        error_capacity: 3,
        ..AnalyticsConfig::default()
    });
    for (i, message) in ["first", "second", "third", "fourth"].iter().enumerate() {
        recorder.record(
            i as u64 * 1000,
            &failed_write(2, 503, ErrorClass::Timeout, message),
        );
    }

    let recent = recorder.analytics.recent_errors(50);

    let messages: Vec<&str> = recent.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["fourth", "third", "second"]);
    assert_eq!(recorder.analytics.recent_errors(1).len(), 1);
    let newest = &recent[0];
    assert_eq!(newest.endpoint, "/api/write");
    assert_eq!(newest.method, "POST");
    assert_eq!((newest.shard, newest.status), (Some(2), 503));
    assert_eq!(newest.class, ErrorClass::Timeout);
    assert_eq!(newest.at.timestamp(), 1_700_000_003);
}

#[test]
fn error_events_keep_no_long_or_multiline_text() {
    let recorder = TestRecorder::new();
    let body = format!("insert failed\nDETAIL: {}", "x".repeat(10_000));
    recorder.record(0, &failed_write(0, 500, ErrorClass::Internal, &body));
    recorder.record(
        0,
        &RequestSample {
            status: 404,
            ..read(1)
        },
    );

    let recent = recorder.analytics.recent_errors(10);

    assert_eq!(recent[0].message, "HTTP 404");
    assert_eq!(recent[0].class, ErrorClass::Client);
    assert!(recent[1].message.len() <= 256 + '…'.len_utf8());
    assert!(recent[1].message.starts_with("insert failed DETAIL: xxx"));
}

#[test]
fn successes_leave_the_error_ring_empty() {
    let recorder = TestRecorder::new();
    recorder.record(0, &read(1));
    assert!(recorder.analytics.recent_errors(50).is_empty());
}
