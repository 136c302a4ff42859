//! Benchmarks against the real local topology (`./setup.sh up`): a real gateway, its
//! shards and metadata server, measured end to end. Not part of any test run; the
//! figures and the exact commands are in docs/BENCHMARKS.md.
//!
//! ```text
//! eval "$(./setup.sh env)"
//! cargo bench -p test-app --bench topology -- import       # one of them
//! cargo bench -p test-app --bench topology                 # all, one after another
//! ```
//!
//! - [`import`]: import rows/s against COPY, the cut-over's fence.
//! - [`resharding`]: a move's rows/s against COPY, the switch pause as clients see it.
//! - [`limits`]: gateway CPU per request of API keys and fair limits, from /proc under
//!   wrk.
//! - [`planned`]: the pause each switchover and slot move showed writers, and what a
//!   held write cost.
//! - [`txn`]: transactions/s and CPU per request against plain writes, under wrk.
//! - [`snapshot`]: a snapshot fan-out against an eventual one, the fence's hold, and
//!   transactions/s beside snapshot readers (run it alone, `--profile dist`).
//!
//! [`copy`] is the plain binary COPY the first two are measured against.
//!
//! They live in this crate, above the gateway they measure: they start gateways and run
//! wrk through its `app`, `gateway_process` and `wrk`, and take the outage lock through
//! `test-support`, all shared with the integration tests; the import's source database
//! is `test-support`'s `import_source`. A plain `cargo test --benches` runs nothing: a
//! benchmark runs only under `cargo bench`.

mod copy;
mod import;
mod key_pairs;
mod limits;
mod planned;
mod resharding;
mod snapshot;
mod txn;

use std::future::Future;
use std::pin::Pin;

type Benchmark = fn() -> Pin<Box<dyn Future<Output = ()>>>;

/// Every benchmark by the name its command gives, with its runtime's worker threads
/// (1: the current thread only, the runtime `#[tokio::test]` gives).
const BENCHMARKS: &[(&str, usize, Benchmark)] = &[
    ("import", 1, || Box::pin(import::run())),
    ("resharding", 1, || Box::pin(resharding::run())),
    ("limits", 1, || Box::pin(limits::run())),
    ("planned", 2, || Box::pin(planned::run())),
    ("txn", 1, || Box::pin(txn::run())),
    ("snapshot", 2, || Box::pin(snapshot::run())),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !test_support::bench::under_cargo_bench() {
        println!("topology benchmarks run only under `cargo bench` (docs/BENCHMARKS.md)");
        return;
    }
    let wanted: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let names: Vec<&str> = BENCHMARKS.iter().map(|(name, _, _)| *name).collect();
    let unknown: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|w| !names.contains(w))
        .collect();
    if !unknown.is_empty() {
        eprintln!(
            "no benchmark named {}; the benchmarks are {}",
            unknown.join(", "),
            names.join(", ")
        );
        std::process::exit(2);
    }
    for &(name, threads, bench) in BENCHMARKS {
        if !wanted.is_empty() && !wanted.contains(&name) {
            continue;
        }
        println!("== {name}");
        test_support::bench::block_on(threads, bench());
    }
}
