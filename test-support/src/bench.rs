//! A benchmark binary's run (`[[bench]] harness = false`): it measures only under
//! `cargo bench`, and on the runtime its benchmark was written for.

use std::future::Future;

/// Whether `cargo bench` runs this binary (it passes `--bench`): `cargo test --benches`
/// runs the same binary without it, and must not start minutes of load on a shared
/// machine.
pub fn under_cargo_bench() -> bool {
    std::env::args().skip(1).any(|a| a == "--bench")
}

/// Runs `bench` to its end on a runtime of `threads` worker threads (1: the current
/// thread only, as `#[tokio::test]` gives), time and I/O enabled.
pub fn block_on(threads: usize, bench: impl Future<Output = ()>) {
    let mut runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut workers = tokio::runtime::Builder::new_multi_thread();
        workers.worker_threads(threads);
        workers
    };
    runtime
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(bench);
}
