//! The end-of-run summary, printed after goose's own report: goose's client-side view
//! per request name, the gateway's server-side percentiles per endpoint, shard and role
//! over the same span, and notes: read-your-writes misses, `x-cache` answers, and a
//! gateway too old for a scenario.
//!
//! Client latencies are goose's time to first byte; server latencies are the gateway's
//! time in its handler. The gap between the two is network, queueing and client.
//!
//! The first line under the client table says how busy the load tester itself was over
//! the measured span (its CPU per request and its share of the cores): when it keeps a
//! core busy, the rates are the load tester's, not the gateway's.

use std::fmt::Write as _;

use goose::metrics::GooseMetrics;
use goose::test_plan::TestPlanStepAction;

use crate::options::WorkloadOptions;
use crate::own_cpu::{Busy, Samples};
use crate::scenarios::ScenarioKind;
use crate::server_report::{self, Fetched, Percentiles, ServerReport};
use crate::traces::TraceTally;
use crate::workload::{CacheTally, RywTally};

/// Everything the summary reports on.
pub struct RunFacts<'a> {
    pub host: &'a str,
    pub options: &'a WorkloadOptions,
    pub keys: &'a str,
    pub metrics: &'a GooseMetrics,
    pub ryw: RywTally,
    pub cache: CacheTally,
    /// The requests' trace contexts and the slowest requests.
    pub traces: TraceTally,
    /// The load tester's own CPU over the measured span, when `/proc` could be read.
    pub own_cpu: Option<Busy>,
}

/// The seconds goose measured (after ramp-up, unless `--no-reset-metrics`), at least 1.
pub fn measured_secs(metrics: &GooseMetrics) -> u64 {
    (metrics.duration as u64).max(1)
}

/// The span goose's figures cover, in milliseconds since the Unix epoch: from when all
/// users had started (goose resets its metrics then) or from the start (no reset: with
/// `--no-reset-metrics`, `--iterations` or `--test-plan`), whichever is closer to goose's
/// own measured seconds, to when users began to stop.
pub fn measured_span_ms(metrics: &GooseMetrics) -> Option<(i64, i64)> {
    let history = &metrics.history;
    let first = history.first()?.timestamp.timestamp_millis();
    let at = |wanted: fn(&TestPlanStepAction) -> bool| {
        history
            .iter()
            .find(|step| wanted(&step.action))
            .map(|step| step.timestamp.timestamp_millis())
    };
    let end = at(|a| {
        matches!(
            a,
            TestPlanStepAction::Decreasing
                | TestPlanStepAction::Canceling
                | TestPlanStepAction::Finished
        )
    })?;
    let measured_ms = metrics.duration as i64 * 1000;
    let start = match at(|a| matches!(a, TestPlanStepAction::Maintaining)) {
        Some(all_started)
            if ((end - all_started) - measured_ms).abs() <= ((end - first) - measured_ms).abs() =>
        {
            all_started
        }
        _ => first,
    };
    (end > start).then_some((start, end))
}

/// The load tester's CPU over goose's measured span.
pub fn own_cpu(metrics: &GooseMetrics, samples: &Samples) -> Option<Busy> {
    let (from, to) = measured_span_ms(metrics)?;
    samples.over(from, to)
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
    out.push_str(&own_cpu_line(facts.own_cpu, facts.metrics));
    out.push_str(&server_section(server, secs));
    out.push_str(&slowest_section(&facts.traces));
    out.push_str(&notes(facts));
    out
}

/// The slowest requests with their trace ids, and whether the gateway traced them.
fn slowest_section(traces: &TraceTally) -> String {
    if traces.slowest.is_empty() {
        return String::new();
    }
    let mut out =
        String::from("\nslowest requests (trace ids, W3C traceparent sent with each request):\n");
    let _ = writeln!(
        out,
        "  {:>9} {:<26} {:>6}  {:<32}  traced",
        "ms", "request", "status", "trace id"
    );
    for slow in &traces.slowest {
        let _ = writeln!(
            out,
            "  {:>9} {:<26} {:>6}  {}  {}",
            slow.millis,
            slow.name,
            slow.status,
            slow.trace_id,
            if slow.traced { "yes" } else { "no" }
        );
    }
    let _ = match traces.traced {
        0 => writeln!(
            out,
            "  the gateway traced none of the {} requests (no traceresponse): its trace export \
             is off (set OTEL_EXPORTER_OTLP_ENDPOINT; see the book's Tracing chapter), or \
             --trace-ratio is 0",
            traces.sent
        ),
        n => writeln!(
            out,
            "  the gateway traced {n} of {} requests (traceresponse under the same id): look \
             an id up in the trace backend it exports to",
            traces.sent
        ),
    };
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

/// "load tester: 6.47 CPU s (user + system) in 10.0 s measured: 0.64 of a core busy (32%
/// of 2 cores), 16.6 µs CPU per request".
fn own_cpu_line(busy: Option<Busy>, metrics: &GooseMetrics) -> String {
    let Some(busy) = busy else {
        return "load tester: its own CPU is unknown (no /proc/self/stat, or goose measured \
                no span)\n"
            .to_owned();
    };
    let requests: u64 = metrics
        .requests
        .values()
        .map(|r| (r.success_count + r.fail_count) as u64)
        .sum();
    let per_request = match busy.us_per_request(requests) {
        Some(us) => format!(", {us:.1} µs CPU per request"),
        None => String::new(),
    };
    let mut line = format!(
        "load tester: {:.2} CPU s (user + system) in {:.1} s measured: {:.2} of a core busy \
         ({:.0}% of {} cores){per_request}\n",
        busy.cpu_secs,
        busy.wall_secs,
        busy.cores_busy(),
        busy.cores_busy() * 100.0 / busy.cores as f64,
        busy.cores
    );
    if DEBUG_BUILD {
        line.push_str(DEBUG_BUILD_NOTE);
        line.push('\n');
    }
    line
}

/// Whether this is a debug build: goose, reqwest and hyper unoptimised.
pub const DEBUG_BUILD: bool = cfg!(debug_assertions);
/// Said before the load and under the load tester's CPU: a debug build spends about ten
/// times a release build's CPU per request (172 against 16 µs on the no-op route), so
/// its rates are the load tester's.
pub const DEBUG_BUILD_NOTE: &str = "  a debug build: it spends about ten times a release \
    build's CPU per request, so these rates measure the load tester; run `cargo run \
    --release -p loadtest`";

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
    fn the_slowest_requests_are_listed_with_their_trace_ids_and_what_was_traced() {
        use crate::traces::Slow;
        let slow = |millis, traced| Slow {
            millis,
            name: "write".into(),
            status: 200,
            trace_id: format!("{millis:032x}"),
            traced,
        };
        let mut tally = TraceTally {
            sent: 500,
            traced: 0,
            slowest: vec![slow(90, false), slow(40, false)],
        };
        let text = slowest_section(&tally);
        assert!(text.contains(&format!("{:032x}", 90)), "{text}");
        assert!(
            text.find("0000005a").unwrap() < text.find("00000028").unwrap(),
            "{text}"
        );
        assert!(text.contains("traced none of the 500 requests"), "{text}");
        tally.traced = 480;
        tally.slowest = vec![slow(90, true)];
        let text = slowest_section(&tally);
        assert!(text.contains("traced 480 of 500 requests"), "{text}");
        assert!(text.contains("  yes"), "{text}");
        assert_eq!(slowest_section(&TraceTally::default()), "");
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
            traces: TraceTally::default(),
            own_cpu: None,
        };
        let text = notes(&facts);
        assert!(text.contains("read-cached: no x-cache header"), "{text}");
        assert!(!text.contains("write:"), "{text}");
        assert!(!text.contains("fan-out:"), "{text}");
    }

    #[test]
    fn the_load_testers_own_cpu_is_per_request_and_a_share_of_the_cores() {
        let busy = Busy {
            cpu_secs: 5.0,
            wall_secs: 10.0,
            cores: 2,
        };
        let line = own_cpu_line(Some(busy), &GooseMetrics::default());
        assert!(
            line.starts_with(
                "load tester: 5.00 CPU s (user + system) in 10.0 s measured: 0.50 of a core \
                 busy (25% of 2 cores)\n"
            ),
            "{line}"
        );
        assert!(own_cpu_line(None, &GooseMetrics::default()).contains("unknown"));
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
