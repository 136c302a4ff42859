//! What a tokio timer costs a request, in-process: the figure behind "one deadline per
//! request instead of two to four timers" in docs/BENCHMARKS.md.
//!
//! A request's timers (the request bound of `AppState::bounded`, a server's
//! `timeout_at` around its statement, the cache's bound on a Redis call) are armed
//! around work that is not ready at once, so each is entered in tokio's timer wheel
//! and taken out again when the work finishes first. Each case runs one such step, a
//! future that is pending once and then ready (`yield_now`, a wake-up through the
//! scheduler as a socket's would be):
//!
//! - `step/bare`: the step alone, with no timer;
//! - `step/timeout`: inside `tokio::time::timeout` (a deadline of its own: the clock
//!   read, the timer entered and taken out);
//! - `step/timeout_at`: inside `timeout_at` a deadline computed once, outside the
//!   loop (what sharing one deadline between the steps would leave);
//! - `step/budget`: no timer, the remaining budget of a shared deadline checked (the
//!   other way to share one deadline);
//! - `step/timeout_ready`: `timeout` around work ready at once (never entered in the
//!   wheel: a free permit, a pooled connection at hand).
//!
//! Each on a current-thread runtime and on a 2-worker runtime (the gateway's actix
//! workers are current-thread runtimes; shard-manager's batch drivers run there too).
//!
//! Run with `cargo bench -p api-router --bench timers`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use tokio::runtime::{Builder, Runtime};
use tokio::task::yield_now;

const BOUND: Duration = Duration::from_secs(10);

/// Runs `iters` steps on `rt` (on a worker, not the blocking thread) and times them.
fn timed<F, Fut>(rt: &Runtime, iters: u64, step: F) -> Duration
where
    F: Fn(tokio::time::Instant) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    rt.block_on(async move {
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + BOUND;
            let started = Instant::now();
            for _ in 0..iters {
                step(deadline).await;
            }
            started.elapsed()
        })
        .await
        .unwrap_or_default()
    })
}

fn cases(c: &mut Criterion, name: &str, rt: &Runtime) {
    let mut group = c.benchmark_group(name);
    group.bench_function("step/bare", |b| {
        b.iter_custom(|iters| timed(rt, iters, |_| async { yield_now().await }))
    });
    group.bench_function("step/timeout", |b| {
        b.iter_custom(|iters| {
            timed(rt, iters, |_| async {
                let _ = black_box(tokio::time::timeout(BOUND, yield_now()).await);
            })
        })
    });
    group.bench_function("step/timeout_at", |b| {
        b.iter_custom(|iters| {
            timed(rt, iters, |deadline| async move {
                let _ = black_box(tokio::time::timeout_at(deadline, yield_now()).await);
            })
        })
    });
    group.bench_function("step/budget", |b| {
        b.iter_custom(|iters| {
            timed(rt, iters, |deadline| async move {
                let left = deadline.checked_duration_since(tokio::time::Instant::now());
                if black_box(left).is_some() {
                    yield_now().await;
                }
            })
        })
    });
    group.bench_function("step/timeout_ready", |b| {
        b.iter_custom(|iters| {
            timed(rt, iters, |_| async {
                let _ = black_box(tokio::time::timeout(BOUND, std::future::ready(())).await);
            })
        })
    });
    group.finish();
}

fn timers(c: &mut Criterion) {
    let current = Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    cases(c, "current_thread", &current);
    let workers = Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a 2-worker runtime");
    cases(c, "two_workers", &workers);
}

criterion_group!(benches, timers);
criterion_main!(benches);
