//! The cluster view: one gateway's report merged with the figures others published
//! equals the report of one recorder that saw every request.

use std::time::Duration;

use analytics::cluster::Figures;
use analytics::recording::ErrorClass;
use analytics::{Analytics, AnalyticsConfig};
use chrono::{DateTime, Utc};

use crate::helpers::{failed_write, read, write, TestRecorder};

/// A second gateway that started `secs` after `first` (on both clocks).
fn later(first: &TestRecorder, secs: u64) -> Analytics {
    let wall = DateTime::<Utc>::from_timestamp(1_700_000_000 + secs as i64, 0).expect("timestamp");
    Analytics::started_at(
        AnalyticsConfig {
            stripes: Some(2),
            ..AnalyticsConfig::default()
        },
        first.start + Duration::from_secs(secs),
        wall,
    )
}

#[test]
fn a_merged_report_equals_one_recorder_that_saw_everything() {
    let a = TestRecorder::new();
    let b = later(&a, 2);
    let all = TestRecorder::new();
    // Seconds 10..30 of a's clock: a serves 1..=500 ms reads, b 501..=1000 ms and writes.
    for i in 0..1000u64 {
        let millis = 10_000 + i * 20;
        let sample = if i < 500 {
            read(i + 1)
        } else {
            write(1, i + 1)
        };
        if i < 500 {
            a.record(millis, &sample);
        } else {
            b.record_at(&sample, a.at(millis));
        }
        all.record(millis, &sample);
    }
    let failed = failed_write(1, 503, ErrorClass::ShardUnavailable, "shard 1 down");
    b.record_at(&failed, a.at(25_000));
    all.record(25_000, &failed);

    let published = Figures::from_bytes(&b.figures_at(a.at(31_000)).to_bytes()).expect("figures");
    let merged = a
        .analytics
        .cluster_report_at(Duration::from_secs(60), a.at(31_000), &[published]);
    let single = all.report(31_000, 60);

    assert_eq!(merged.totals, single.totals);
    assert_eq!(merged.totals.requests, 1001);
    assert_eq!(merged.latency, single.latency);
    assert_eq!(merged.latency.overall.count, 1001);
    assert_eq!(merged.errors, single.errors);
    assert_eq!(merged.shards, single.shards);
    assert_eq!(merged.throughput, single.throughput);
}

#[test]
fn figures_cover_completed_seconds_and_count_since_start() {
    let a = TestRecorder::new();
    a.record(1_500, &read(3));
    a.record(2_500, &read(3));
    let figures = a.analytics.figures_at(a.at(2_600));
    assert_eq!(figures.requests(), 2);
    assert_eq!(figures.second, 2);
    // The second being recorded (2) is in the totals, not yet in the windows.
    let only_mine = a
        .analytics
        .cluster_report_at(Duration::from_secs(60), a.at(3_100), &[]);
    assert_eq!(only_mine.latency.overall.count, 2);
}
