//! The side-by-side table of the two targets.

use std::thread;
use std::time::Duration;

use super::workload::Phase;
use super::{BenchArgs, SHARDED_DB, SINGLE_DB, TABLE};
use crate::tools::plan::report::thousands;
use shard_manager::routing::Router;

/// What one phase measured on one target.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub ops: u64,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

/// Percentiles of the latencies and the rate over `elapsed`.
pub fn measure(mut micros: Vec<u32>, elapsed: Duration) -> Measured {
    micros.sort_unstable();
    let at = |q: f64| {
        let i = ((micros.len() as f64 * q).ceil() as usize).saturating_sub(1);
        Duration::from_micros(u64::from(micros.get(i).copied().unwrap_or(0)))
    };
    Measured {
        ops: micros.len() as u64,
        elapsed,
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// The side-by-side table, with the caveat that matters.
pub fn render(
    args: &BenchArgs,
    router: &Router,
    primaries: &[String],
    results: &[Vec<Measured>],
) -> String {
    let ms = |d: Duration| format!("{:.2}ms", d.as_secs_f64() * 1000.0);
    let rate = |m: &Measured| m.ops as f64 / m.elapsed.as_secs_f64().max(1e-9);
    let mut out = format!(
        "bench: {} {TABLE} records, {} clients per target\n  \
         single:  {SINGLE_DB} on {}\n  \
         sharded: {SHARDED_DB} on {} primaries ({}), routed by {}\n\n",
        thousands(args.rows),
        args.clients,
        primaries[0],
        primaries.len(),
        primaries.join(", "),
        router.strategy(),
    );
    out.push_str(&format!(
        "{:<20} {:>8} | {:>10} {:>9} {:>9} | {:>10} {:>9} {:>9} | {:>8}\n",
        "phase", "ops", "single/s", "p50", "p99", "sharded/s", "p50", "p99", "speedup"
    ));
    for (i, phase) in Phase::ALL.iter().enumerate() {
        let (Some(a), Some(b)) = (
            results.first().and_then(|r| r.get(i)),
            results.get(1).and_then(|r| r.get(i)),
        ) else {
            continue;
        };
        out.push_str(&format!(
            "{:<20} {:>8} | {:>10} {:>9} {:>9} | {:>10} {:>9} {:>9} | {:>7.2}x\n",
            phase.label(),
            thousands(a.ops),
            thousands(rate(a) as u64),
            ms(a.p50),
            ms(a.p99),
            thousands(rate(b) as u64),
            ms(b.p50),
            ms(b.p99),
            rate(b) / rate(a).max(1e-9),
        ));
    }
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    out.push_str(&format!(
        "\nnote: all {} PostgreSQL servers and this client share one machine ({cores} cores),\n\
         so the \"single database\" competes with the shards for the same CPUs and disk.\n\
         This shows the routing overhead and the parallelism sharding allows, not a fair\n\
         multi-machine scaling test: on separate machines each shard brings its own CPUs,\n\
         memory and disk. Anything else running on the machine moves these numbers.\n",
        primaries.len()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let m = measure((1..=100).rev().collect(), Duration::from_secs(1));
        assert_eq!(m.ops, 100);
        assert_eq!(m.p50, Duration::from_micros(50));
        assert_eq!(m.p99, Duration::from_micros(99));
        assert_eq!(measure(Vec::new(), Duration::ZERO).p99, Duration::ZERO);
    }
}
