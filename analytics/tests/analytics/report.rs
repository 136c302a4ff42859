//! The metrics report: windows, percentiles, breakdowns and totals from known inputs.

use std::sync::Arc;
use std::time::Duration;

use analytics::recording::{CacheEvent, ServedBy};
use analytics::reports::LatencySummary;
use analytics::{Analytics, AnalyticsConfig};

use crate::helpers::{read, write, TestRecorder};

#[test]
fn percentiles_of_one_to_a_thousand_milliseconds() {
    let recorder = TestRecorder::new();
    for ms in 1..=1000 {
        recorder.record(500, &read(ms));
    }

    let report = recorder.report(1_000, 60);

    // HDR with two significant digits reports each percentile as the top of its
    // bucket: 500 ms falls in [499.712, 501.759] ms, 990 ms in [987.136, 991.231].
    let expected = LatencySummary {
        count: 1000,
        p50: 501.759,
        p90: 901.119,
        p95: 950.271,
        p99: 991.231,
        p999: 999.423,
        max: 1000.0,
        mean: 500.5,
    };
    assert_eq!(report.latency.overall, expected);
    assert_eq!(report.latency.by_endpoint["/api/read"], expected);
    assert_eq!(report.latency.by_shard["0"], expected);
    assert_eq!(report.latency.by_role["replica"], expected);
    assert_eq!(report.latency.by_outcome["success"], expected);
}

#[test]
fn throughput_windows_count_completed_seconds_exactly() {
    // Second s sees s requests, for s in 0..120.
    let recorder = TestRecorder::new();
    for second in 0..120 {
        for _ in 0..second {
            recorder.record(second * 1000 + 500, &read(2));
        }
    }

    let report = recorder.report(120_000, 60);

    assert_eq!(report.throughput.last_1s, 119.0);
    assert_eq!(report.throughput.last_10s, 114.5); // mean of 110..=119
    assert_eq!(report.throughput.last_60s, 89.5); // mean of 60..=119
    assert_eq!(report.throughput.window, 89.5);
    assert_eq!(report.latency.overall.count, (60..120).sum::<u64>());
    assert_eq!(report.detail_window_secs, 60);
    assert_eq!(report.totals.requests, (0..120).sum::<u64>());
    assert_eq!(report.uptime_secs, 120);

    let five_minutes = recorder.report(120_000, 300);
    assert_eq!(five_minutes.window_secs, 300);
    assert_eq!(
        five_minutes.throughput.window,
        (0..120).sum::<u64>() as f64 / 120.0
    );
    assert_eq!(five_minutes.detail_window_secs, 120);
}

#[test]
fn the_current_second_is_in_totals_but_not_in_windows() {
    let recorder = TestRecorder::new();
    recorder.record(10_200, &read(1));

    let report = recorder.report(10_700, 10);

    assert_eq!(report.totals.requests, 1);
    assert_eq!(report.throughput.last_10s, 0.0);
    assert_eq!(report.latency.overall.count, 0);

    let next_second = recorder.report(11_000, 10);
    assert_eq!(next_second.throughput.last_1s, 1.0);
    assert_eq!(next_second.latency.overall.count, 1);
}

#[test]
fn a_fresh_recorder_divides_by_its_uptime() {
    let recorder = TestRecorder::new();
    for _ in 0..30 {
        recorder.record(1_500, &read(1));
    }

    let report = recorder.report(3_000, 60);

    assert_eq!(report.throughput.last_60s, 10.0);
    assert_eq!(report.detail_window_secs, 3);
}

#[test]
fn old_traffic_leaves_the_window_but_stays_in_totals() {
    let recorder = TestRecorder::new();
    recorder.record(1_000, &read(1));
    recorder.record(100_000, &read(9));

    let report = recorder.report(101_000, 60);

    assert_eq!(report.latency.overall.count, 1);
    assert_eq!(report.latency.overall.max, 9.0);
    assert_eq!(report.totals.requests, 2);
    assert_eq!(report.totals.rows_read, 2);
}

#[test]
fn shards_show_reads_writes_and_who_served_them() {
    let recorder = TestRecorder::new();
    recorder.record(100, &read(1));
    recorder.record(100, &read(1));
    let cached = analytics::recording::RequestSample {
        served_by: Some(ServedBy::Cache),
        ..read(1)
    };
    recorder.record(100, &cached);
    recorder.record(200, &write(1, 4));
    recorder.record(300, &write(99, 4));

    let report = recorder.report(1_000, 10);

    let shard0 = &report.shards["0"];
    assert_eq!((shard0.reads, shard0.writes, shard0.rows_read), (3, 0, 3));
    assert_eq!(
        (
            shard0.by_role.replica,
            shard0.by_role.cache,
            shard0.by_role.primary
        ),
        (2, 1, 0)
    );
    let shard1 = &report.shards["1"];
    assert_eq!(
        (shard1.reads, shard1.writes, shard1.by_role.primary),
        (0, 1, 1)
    );
    // Shard 99 is past the default cap of 16 shards.
    assert_eq!(report.shards["other"].writes, 1);
    assert_eq!(report.totals.rows_written, 2);
}

#[test]
fn endpoints_past_the_cap_fold_into_other() {
    let recorder = TestRecorder::with(AnalyticsConfig {
        max_endpoints: 2,
        ..AnalyticsConfig::default()
    });
    for endpoint in ["/a", "/b", "/c", "/d", "other"] {
        let sample = analytics::recording::RequestSample {
            endpoint,
            ..read(1)
        };
        recorder.record(0, &sample);
    }

    let report = recorder.report(1_000, 60);

    let endpoints: Vec<(&str, u64)> = report
        .latency
        .by_endpoint
        .iter()
        .map(|(name, summary)| (name.as_str(), summary.count))
        .collect();
    assert_eq!(endpoints, [("/a", 1), ("/b", 1), ("other", 3)]);
}

#[test]
fn cache_counts_and_hit_ratio() {
    let recorder = TestRecorder::new();
    let at = recorder.at(500);
    for event in [
        CacheEvent::Hit,
        CacheEvent::Hit,
        CacheEvent::Hit,
        CacheEvent::Miss,
    ] {
        recorder
            .analytics
            .record_cache_at(event, Some(Duration::from_micros(300)), at);
    }
    recorder
        .analytics
        .record_cache_at(CacheEvent::Invalidation, None, at);

    let report = recorder.report(1_000, 60);

    assert_eq!(report.cache.hits, 3);
    assert_eq!(report.cache.misses, 1);
    assert_eq!(report.cache.invalidations, 1);
    assert_eq!(report.cache.hit_ratio, 0.75);
    assert_eq!(report.totals.cache, report.cache);
}

#[test]
fn replica_lag_is_a_gauge_with_a_summary() {
    let recorder = TestRecorder::new();
    let analytics = &recorder.analytics;
    analytics.set_replica_lag(0, "replica-0:5432", Some(100), Some(20), true);
    analytics.set_replica_lag(1, "replica-1:5432", Some(9_000), Some(1_500), false);
    analytics.set_replica_lag(0, "replica-0:5432", Some(300), Some(40), true);

    let report = recorder.report(1_000, 60);

    assert_eq!(report.replicas.len(), 2);
    assert_eq!(report.replicas[0].lag_bytes, Some(300));
    assert_eq!(report.replica_summary.healthy, 1);
    assert_eq!(report.replica_summary.max_lag_ms, Some(1_500));
}

#[test]
fn window_is_rounded_up_and_clamped() {
    let recorder = TestRecorder::new();
    let at = recorder.at(5_000);
    let analytics = &recorder.analytics;
    assert_eq!(
        analytics
            .report_at(Duration::from_millis(500), at)
            .window_secs,
        1
    );
    assert_eq!(analytics.report_at(Duration::ZERO, at).window_secs, 1);
    assert_eq!(
        analytics
            .report_at(Duration::from_secs(7200), at)
            .window_secs,
        900
    );
    assert!(analytics.parse_window("16m").is_err());
    assert_eq!(
        analytics.parse_time_range_ms("60000"),
        Ok(Duration::from_secs(60))
    );
}

#[test]
fn threads_recording_at_once_lose_nothing() {
    let analytics = Arc::new(Analytics::new(AnalyticsConfig::default()));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let analytics = Arc::clone(&analytics);
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    analytics.record(&read(1));
                }
            })
        })
        .collect();
    for thread in threads {
        assert!(thread.join().is_ok());
    }

    let report = analytics.report(Duration::from_secs(60));

    assert_eq!(report.totals.requests, 40_000);
    assert_eq!(report.totals.rows_read, 40_000);
}

#[test]
fn two_recorders_in_one_process_are_independent() {
    let first = TestRecorder::new();
    let second = TestRecorder::new();
    first.record(0, &read(1));

    assert_eq!(first.report(1_000, 60).totals.requests, 1);
    assert_eq!(second.report(1_000, 60).totals.requests, 0);
    assert!(!second.analytics.prometheus_text().contains("/api/read"));
}
