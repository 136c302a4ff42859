//! Cost of the record path, the one analytics call on every request (target: well
//! under 1 µs), alone and with two threads recording at once; plus the read paths a
//! dashboard and a Prometheus scraper hit, for scale; the load per slot counted on
//! every keyed request; and the cluster view's publishing and merging.
//!
//! Run with `cargo bench -p analytics --bench record`.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use analytics::cluster::Figures;
use analytics::load::{SlotHit, SlotLoad};
use analytics::recording::{CacheEvent, ErrorClass, ErrorInfo, RequestSample, ServedBy};
use analytics::{Analytics, AnalyticsConfig};
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
                trace_id: None,
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

/// 10,000 keys, one of them in ten requests.
fn keys() -> Vec<String> {
    (0..10_000).map(|i| format!("user_{i}")).collect()
}

fn hit<'a>(keys: &'a [String], i: usize) -> SlotHit<'a> {
    let key = if i.is_multiple_of(10) {
        &keys[0]
    } else {
        &keys[(i * 7919) % keys.len()]
    };
    SlotHit {
        slot: (i * 7919 % 1024) as u32,
        key,
        bytes_written: 120,
        bytes_read: 240,
        shard_time: Duration::from_micros(400),
    }
}

fn slot_load(c: &mut Criterion) {
    let load = SlotLoad::new(1024);
    let keys = keys();
    let mut i = 0usize;
    c.bench_function("slot_load/record_1_thread", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            load.record(black_box(&hit(&keys, i)));
        })
    });
    let load = Arc::new(SlotLoad::new(1024));
    c.bench_function("slot_load/record_2_threads", |b| {
        b.iter_custom(|iters| {
            let start_line = Barrier::new(2);
            std::thread::scope(|scope| {
                let runners: Vec<_> = (0..2)
                    .map(|t| {
                        let (load, keys, start_line) = (&load, &keys, &start_line);
                        scope.spawn(move || {
                            start_line.wait();
                            let started = Instant::now();
                            for i in 0..iters as usize {
                                load.record(black_box(&hit(keys, i * 2 + t)));
                            }
                            started.elapsed()
                        })
                    })
                    .collect();
                runners
                    .into_iter()
                    .filter_map(|runner| runner.join().ok())
                    .max()
                    .unwrap_or_default()
            })
        })
    });
}

/// One publishing round of a busy gateway (its figures and its slots' load, as bytes),
/// and a cluster report merging two others' figures.
fn cluster_paths(c: &mut Criterion) {
    let analytics = busy_recorder();
    let load = SlotLoad::new(1024);
    let keys = keys();
    for i in 0..20_000 {
        load.record(&hit(&keys, i));
    }
    let round = || {
        let mut figures = analytics.figures();
        figures.load = load.figures();
        figures.to_bytes()
    };
    eprintln!("figures published per round: {} bytes", round().len());
    c.bench_function("cluster/publish_round", |b| b.iter(|| black_box(round())));
    let others: Vec<Figures> = (0..2)
        .filter_map(|_| Figures::from_bytes(&round()))
        .collect();
    c.bench_function("cluster/report_60s_of_3_gateways", |b| {
        b.iter(|| analytics.cluster_report(black_box(Duration::from_secs(60)), &others))
    });
}

criterion_group!(
    benches,
    slot_load,
    cluster_paths,
    record_single_thread,
    record_two_threads,
    record_failure,
    record_cache,
    read_paths
);
criterion_main!(benches);
