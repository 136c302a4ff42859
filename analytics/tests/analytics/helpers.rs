//! A recorder with a fixed start, and typed sample builders.

use std::time::{Duration, Instant};

use analytics::recording::{ErrorClass, ErrorInfo, RequestSample, ServedBy};
use analytics::reports::MetricsReport;
use analytics::{Analytics, AnalyticsConfig};
use chrono::{DateTime, Utc};

/// A recorder whose second 0 starts at a known instant.
pub struct TestRecorder {
    pub analytics: Analytics,
    pub start: Instant,
}

impl TestRecorder {
    pub fn new() -> Self {
        Self::with(AnalyticsConfig {
            stripes: Some(2),
            ..AnalyticsConfig::default()
        })
    }

    pub fn with(config: AnalyticsConfig) -> Self {
        let start = Instant::now();
        let wall = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).expect("valid timestamp");
        Self {
            analytics: Analytics::started_at(config, start, wall),
            start,
        }
    }

    /// The instant `millis` after start.
    pub fn at(&self, millis: u64) -> Instant {
        self.start + Duration::from_millis(millis)
    }

    pub fn record(&self, millis: u64, sample: &RequestSample<'_>) {
        self.analytics.record_at(sample, self.at(millis));
    }

    pub fn report(&self, millis: u64, window_secs: u64) -> MetricsReport {
        self.analytics
            .report_at(Duration::from_secs(window_secs), self.at(millis))
    }
}

/// A successful read of one row from shard 0's replica.
pub fn read(latency_ms: u64) -> RequestSample<'static> {
    RequestSample {
        endpoint: "/api/read",
        method: "GET",
        status: 200,
        latency: Duration::from_millis(latency_ms),
        shard: Some(0),
        served_by: Some(ServedBy::Replica),
        rows_written: 0,
        rows_read: 1,
        error: None,
        trace_id: None,
    }
}

/// A successful single-row write to `shard`'s primary.
pub fn write(shard: u32, latency_ms: u64) -> RequestSample<'static> {
    RequestSample {
        endpoint: "/api/write",
        method: "POST",
        status: 201,
        latency: Duration::from_millis(latency_ms),
        shard: Some(shard),
        served_by: Some(ServedBy::Primary),
        rows_written: 1,
        rows_read: 0,
        error: None,
        trace_id: None,
    }
}

/// A write that failed with `class` and `status`.
pub fn failed_write(
    shard: u32,
    status: u16,
    class: ErrorClass,
    message: &str,
) -> RequestSample<'_> {
    RequestSample {
        status,
        served_by: None,
        rows_written: 0,
        error: Some(ErrorInfo { class, message }),
        ..write(shard, 3)
    }
}
