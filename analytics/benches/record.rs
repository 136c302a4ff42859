//! Cost of the record path, the one analytics call on every request (target: well
//! under 1 µs), alone and with two threads recording at once; plus the read paths a
//! dashboard and a Prometheus scraper hit, for scale.
//!
//! Run with `cargo bench -p analytics --bench record`.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use analytics::{
    Analytics, AnalyticsConfig, CacheEvent, ErrorClass, ErrorInfo, RequestSample, ServedBy,
};
use criterion::{criterion_group, criterion_main, Criterion};

/// A mix like the gateway's traffic: reads from replicas and cache, writes to
/// primaries, over four shards and three endpoints, all successful.
fn traffic() -> Vec<RequestSample<'static>> {
    (0..16u32)
        .map(|i| {
            let (endpoint, method, served_by) = match i % 4 {
                0 | 1 => ("/api/read", "GET", ServedBy::Replica),
                2 => ("/api/read", "GET", ServedBy::Cache),
                _ => ("/api/write", "POST", ServedBy::Primary),
            };
            RequestSample {
                endpoint,
                method,
                status: 200,
                latency: Duration::from_micros(300 + u64::from(i) * 700),
                shard: Some(i % 4),
                served_by: Some(served_by),
                rows_written: u64::from(method == "POST"),
                rows_read: u64::from(method == "GET"),
                error: None,
            }
        })
        .collect()
}

fn recorder() -> Analytics {
    Analytics::new(AnalyticsConfig::default())
}

fn record_single_thread(c: &mut Criterion) {
    let analytics = recorder();
    let samples = traffic();
    let mut i = 0usize;
    c.bench_function("record/1_thread", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            analytics.record(black_box(&samples[i % samples.len()]));
        })
    });
}

fn record_two_threads(c: &mut Criterion) {
    let analytics = Arc::new(recorder());
    let samples = traffic();
    c.bench_function("record/2_threads", |b| {
        b.iter_custom(|iters| {
            let start_line = Barrier::new(2);
            std::thread::scope(|scope| {
                let runners: Vec<_> = (0..2)
                    .map(|_| {
                        scope.spawn(|| {
                            start_line.wait();
                            let started = Instant::now();
                            for i in 0..iters as usize {
                                analytics.record(black_box(&samples[i % samples.len()]));
                            }
                            started.elapsed()
                        })
                    })
                    .collect();
                // Each iteration is one record on each thread, at the same time.
                runners
                    .into_iter()
                    .filter_map(|runner| runner.join().ok())
                    .max()
                    .unwrap_or_default()
            })
        })
    });
}

fn record_failure(c: &mut Criterion) {
    let analytics = recorder();
    let failed = RequestSample {
        status: 503,
        error: Some(ErrorInfo {
            class: ErrorClass::ShardUnavailable,
            message: "connection refused by shard 2 primary",
        }),
        ..traffic()[3]
    };
    c.bench_function("record/1_thread_error", |b| {
        b.iter(|| analytics.record(black_box(&failed)))
    });
}

fn record_cache(c: &mut Criterion) {
    let analytics = recorder();
    c.bench_function("record_cache/1_thread", |b| {
        b.iter(|| {
            analytics.record_cache(black_box(CacheEvent::Hit), Some(Duration::from_micros(250)))
        })
    });
}

/// A recorder with 70 s of traffic in every second, so windows are full.
fn busy_recorder() -> Analytics {
    let start = Instant::now() - Duration::from_secs(70);
    let analytics = Analytics::started_at(AnalyticsConfig::default(), start, chrono::Utc::now());
    let samples = traffic();
    for second in 0..70u64 {
        for (i, sample) in samples.iter().enumerate().cycle().take(200) {
            let at = start + Duration::from_millis(second * 1000 + i as u64);
            analytics.record_at(sample, at);
        }
    }
    analytics
}

fn read_paths(c: &mut Criterion) {
    let analytics = busy_recorder();
    c.bench_function("report/60s", |b| {
        b.iter(|| analytics.report(black_box(Duration::from_secs(60))))
    });
    c.bench_function("prometheus_text", |b| {
        b.iter(|| analytics.prometheus_text())
    });
}

criterion_group!(
    benches,
    record_single_thread,
    record_two_threads,
    record_failure,
    record_cache,
    read_paths
);
criterion_main!(benches);
