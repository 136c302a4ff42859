//! The end-of-run summary, printed after goose's own report: goose's client-side view
//! per request name, the gateway's server-side percentiles per endpoint, shard and role
//! over the same span, and notes: read-your-writes misses, `x-cache` answers, and a
//! gateway too old for a scenario.
//!
//! Client latencies are goose's time to first byte; server latencies are the gateway's
//! time in its handler. The gap between the two is network, queueing and client.

use std::fmt::Write as _;

use goose::metrics::GooseMetrics;

use crate::options::WorkloadOptions;
use crate::scenarios::ScenarioKind;
use crate::server_report::{self, Fetched, Percentiles, ServerReport};
use crate::workload::{CacheTally, RywTally};

/// Everything the summary reports on.
pub struct RunFacts<'a> {
    pub host: &'a str,
    pub options: &'a WorkloadOptions,
    pub keys: &'a str,
    pub metrics: &'a GooseMetrics,
    pub ryw: RywTally,
    pub cache: CacheTally,
}

/// The seconds goose measured (after ramp-up, unless `--no-reset-metrics`), at least 1.
pub fn measured_secs(metrics: &GooseMetrics) -> u64 {
    (metrics.duration as u64).max(1)
}

/// The whole summary as text.
pub fn render(facts: &RunFacts<'_>, server: &Fetched) -> String {
    let mut out = String::new();
    let secs = measured_secs(facts.metrics);
    let _ = writeln!(out, "\n=== Shardgate loadtest summary ===");
    let _ = writeln!(
        out,
        "{} | scenarios {} | {} | batch {} | {} users | {} s measured",
        facts.host,
        facts.options.describe_scenarios(),
        facts.keys,
        facts.options.batch,
        facts.metrics.maximum_users,
        secs
    );
    out.push_str(&client_table(facts.metrics, secs));
    out.push_str(&server_section(server, secs));
    out.push_str(&notes(facts));
    out
}

fn client_table(metrics: &GooseMetrics, secs: u64) -> String {
    let mut out = String::from("\nclient side (goose, time to first byte):\n");
    if metrics.requests.is_empty() {
        out.push_str("  no request metrics (goose ran with --no-metrics, or sent nothing)\n");
        return out;
    }
    let _ = writeln!(
        out,
        "  {:<26} {:>9} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "request", "requests", "fails", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    let mut names: Vec<_> = metrics.requests.keys().collect();
    names.sort();
    for name in names {
        let r = &metrics.requests[name];
        let count = r.success_count + r.fail_count;
        let t = &r.raw_data;
        let ms = |percent: f32| t.percentile_us(percent) as f64 / 1000.0;
        let _ = writeln!(
            out,
            "  {:<26} {:>9} {:>7} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            name,
            count,
            r.fail_count,
            count as f64 / secs as f64,
            ms(0.5),
            ms(0.9),
            ms(0.99),
            t.maximum_time_us as f64 / 1000.0
        );
    }
    out
}

fn server_section(server: &Fetched, secs: u64) -> String {
    let path = server_report::path(secs);
    match server {
        Fetched::NotServed => format!(
            "\nserver side: GET {path} answered 404: this gateway does not serve analytics \
             yet; skipped\n"
        ),
        Fetched::Failed(why) => format!("\nserver side: GET {path} failed ({why}); skipped\n"),
        Fetched::Report(report) => server_table(report, &path),
    }
}

fn server_table(report: &ServerReport, path: &str) -> String {
    let mut out = format!(
        "\nserver side (GET {path}: {:.1} req/s over {} s, {} errors ({:.2}%); latencies \
         over the last {} s):\n",
        report.throughput.window,
        report.window_secs,
        report.errors.count,
        report.errors.rate * 100.0,
        report.detail_window_secs
    );
    let _ = writeln!(
        out,
        "  {:<34} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "", "requests", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    let row = |out: &mut String, label: String, p: &Percentiles| {
        let _ = writeln!(
            out,
            "  {:<34} {:>9} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            label, p.count, p.p50, p.p90, p.p99, p.max
        );
    };
    let latency = &report.latency;
    row(&mut out, "overall".into(), &latency.overall);
    for (endpoint, p) in &latency.by_endpoint {
        row(&mut out, format!("endpoint {endpoint}"), p);
    }
    for (shard, p) in &latency.by_shard {
        let label = match report.shards.get(shard) {
            Some(t) => format!(
                "shard {shard} (primary {}, replica {})",
                t.by_role.primary, t.by_role.replica
            ),
            None => format!("shard {shard}"),
        };
        row(&mut out, label, p);
    }
    for (role, p) in &latency.by_role {
        row(&mut out, format!("role {role}"), p);
    }
    out
}

fn notes(facts: &RunFacts<'_>) -> String {
    let mut out = String::new();
    for kind in facts.options.scenario.iter().map(|w| w.kind) {
        let line = match kind {
            ScenarioKind::Ryw => ryw_line(facts.ryw),
            ScenarioKind::ReadCached => cache_line(facts.cache),
            ScenarioKind::FanOut => match fan_out_400s(facts.metrics) {
                0 => continue,
                n => format!(
                    "{n} answered 400: this gateway predates fan-out reads (a list without \
                     x-shard-key); the request is unchanged once it has them"
                ),
            },
            _ => continue,
        };
        let _ = writeln!(out, "  {kind}: {line}");
    }
    if out.is_empty() {
        out
    } else {
        format!("\nnotes:\n{out}")
    }
}

/// How many fan-out requests got a 400.
fn fan_out_400s(metrics: &GooseMetrics) -> usize {
    metrics
        .requests
        .get("GET fan-out")
        .and_then(|r| r.status_code_counts.get(&400).copied())
        .unwrap_or(0)
}

fn cache_line(t: CacheTally) -> String {
    let answered = t.hit + t.miss + t.bypass;
    if answered == 0 {
        return format!(
            "no x-cache header on {} reads: the gateway's cache is off ([cache] enabled = \
             false) or it predates the cache; these were plain replica reads",
            t.absent
        );
    }
    let share = |n: u64| n as f64 * 100.0 / (answered + t.absent) as f64;
    format!(
        "x-cache hit {} ({:.1}%), miss {} ({:.1}%), bypass {} ({:.1}%), none {} (whole run, \
         ramp-up included)",
        t.hit,
        share(t.hit),
        t.miss,
        share(t.miss),
        t.bypass,
        share(t.bypass),
        t.absent
    )
}

fn ryw_line(t: RywTally) -> String {
    let share = if t.pairs == 0 {
        0.0
    } else {
        t.misses as f64 * 100.0 / t.pairs as f64
    };
    let token = if t.with_token == 0 {
        "no write answered with x-shard-lsn, so every read went without x-min-lsn \
         (eventual): misses are replica lag"
            .to_owned()
    } else {
        format!("{} reads carried x-min-lsn", t.with_token)
    };
    format!(
        "{} write-then-read pairs, {} misses ({share:.2}%) over the whole run, ramp-up \
         included — {token}",
        t.pairs, t.misses
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::options::Cli;

    fn options(args: &[&str]) -> WorkloadOptions {
        Cli::parse_from(std::iter::once("loadtest").chain(args.iter().copied())).workload
    }

    #[test]
    fn ryw_reports_misses_and_whether_a_token_was_sent() {
        let line = ryw_line(RywTally {
            pairs: 200,
            misses: 3,
            with_token: 0,
        });
        assert!(
            line.starts_with("200 write-then-read pairs, 3 misses (1.50%)"),
            "{line}"
        );
        assert!(line.contains("without x-min-lsn"));
        let line = ryw_line(RywTally {
            pairs: 10,
            misses: 0,
            with_token: 10,
        });
        assert!(line.contains("10 reads carried x-min-lsn"), "{line}");
    }

    #[test]
    fn cache_answers_are_summed_up() {
        let line = cache_line(CacheTally {
            hit: 75,
            miss: 25,
            bypass: 0,
            absent: 0,
        });
        assert!(
            line.starts_with("x-cache hit 75 (75.0%), miss 25 (25.0%)"),
            "{line}"
        );
        let line = cache_line(CacheTally {
            absent: 10,
            ..CacheTally::default()
        });
        assert!(line.contains("cache is off"), "{line}");
    }

    #[test]
    fn only_scenarios_with_something_to_say_get_a_note() {
        let metrics = GooseMetrics::default();
        let options = options(&["--scenario", "write,fan-out,read-cached"]);
        let facts = RunFacts {
            host: "http://127.0.0.1:8080",
            options: &options,
            keys: "10 keys",
            metrics: &metrics,
            ryw: RywTally::default(),
            cache: CacheTally::default(),
        };
        let text = notes(&facts);
        assert!(text.contains("read-cached: no x-cache header"), "{text}");
        assert!(!text.contains("write:"), "{text}");
        assert!(!text.contains("fan-out:"), "{text}");
    }

    #[test]
    fn a_missing_endpoint_is_said_and_skipped() {
        let text = server_section(&Fetched::NotServed, 10);
        assert!(text.contains("window=10s answered 404"), "{text}");
    }

    #[test]
    fn the_server_table_lists_shards_and_roles() {
        let report: ServerReport = serde_json::from_str(
            r#"{"window_secs": 10, "detail_window_secs": 10,
                "latency": {"overall": {"count": 4, "p50": 1.0, "p99": 2.0},
                            "by_shard": {"1": {"count": 4, "p50": 1.0}},
                            "by_role": {"primary": {"count": 4, "p50": 1.0}}},
                "shards": {"1": {"requests": 4, "by_role": {"primary": 4}}}}"#,
        )
        .unwrap();
        let text = server_table(&report, "/api/analytics/metrics?window=10s");
        assert!(text.contains("shard 1 (primary 4, replica 0)"), "{text}");
        assert!(text.contains("role primary"), "{text}");
    }
}
