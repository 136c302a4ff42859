//! The command line: goose's own options and Shardgate's, in one parser.
//!
//! Goose 0.19 declares [`GooseConfiguration`] with clap, so it is flattened into [`Cli`]
//! next to [`WorkloadOptions`]: `--help` lists both, goose's options keep their names
//! and meaning (`--host`, `--users`, `--run-time`, `--report-file`, ...), and the parsed
//! configuration goes to goose unchanged. Each of our options can also come from an
//! environment variable (`SHARDGATE_SCENARIO=read:3,write:1`); the flag wins.
//!
//! Use `--scenario` (ours) to choose what runs and with which weights. Goose's own
//! `--scenarios` only filters among the scenarios `--scenario` selected.

use std::collections::HashSet;
use std::path::PathBuf;

use clap::{Args, Parser, ValueEnum};
use goose::config::GooseConfiguration;

use crate::scenarios::{Needs, ScenarioKind};

/// Where the load goes when neither `--host` nor a scenario says: `./setup.sh run`.
pub const DEFAULT_HOST: &str = "http://127.0.0.1:8080";
/// The gateway's `server.max_batch_records` default.
pub const MAX_BATCH: usize = 10_000;

const EXAMPLES: &str = "\
Examples:
  cargo run -p loadtest -- --users 8 --run-time 30s
  cargo run -p loadtest -- --scenario read:3,write:1 --keys 100000 --skew 1.1 -u 16 -t 1m
  cargo run -p loadtest -- --scenario bulk-write --batch 500 -t 20s --report-file report.html
  SHARDGATE_SCENARIO=ryw cargo run -p loadtest -- -H http://127.0.0.1:18181 -t 10s
  cargo run -p loadtest -- --scenario verify -u 8 -t 30s --verify-out verify.json
  cargo run -p loadtest -- --verify-check verify.json

Scenarios: write, read (replica), read-strong (primary), read-cached (counts x-cache),
list, bulk-write, fan-out (no shard key: every shard), query (POST /api/query: a filtered,
sorted page across every shard), mixed (70% write, 30% read),
ryw (write, read back with x-min-lsn when the write gave x-shard-lsn; counts misses),
verify (each user owns records; every write and token read is checked at the end:
lost, applied twice, stale; exit status 3 when any is found).";

/// `loadtest`: put a Shardgate gateway under load with goose.
#[derive(Debug, Parser)]
#[command(
    name = "loadtest",
    about = "Put a Shardgate gateway under load (goose 0.19).",
    long_about = "Put a Shardgate gateway under load (goose 0.19).\n\n\
        Runs the chosen scenarios against --host (default http://127.0.0.1:8080, what \
        ./setup.sh run serves). Before the load starts it checks /api/health and, when a \
        scenario reads, writes the key space once (--prefill). At the end it prints goose's \
        report, then a summary with goose's client-side latencies next to the gateway's own \
        per-shard and per-role percentiles from /api/analytics/metrics.\n\n\
        Goose's telnet controller is off by default (no port is opened); goose 0.19's \
        WebSocket controller is off unless --websocket is given.",
    after_help = EXAMPLES,
    args_override_self = true
)]
pub struct Cli {
    #[command(flatten)]
    pub workload: WorkloadOptions,
    #[command(flatten)]
    pub goose: GooseConfiguration,
}

/// Shardgate's own options.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Shardgate workload")]
pub struct WorkloadOptions {
    /// Scenarios to run, NAME[:WEIGHT],... [default: write]
    ///
    /// Users are shared out by weight: `read:3,write:1` with 8 users runs 6 readers and 2
    /// writers. Names: write, read, read-strong, read-cached, list, bulk-write, fan-out,
    /// query, mixed, ryw, live, verify.
    #[arg(
        long,
        env = "SHARDGATE_SCENARIO",
        value_name = "LIST",
        value_delimiter = ',',
        value_parser = parse_weighted,
        default_value = "write",
        hide_default_value = true
    )]
    pub scenario: Vec<Weighted>,
    /// Size of the key space: keys user_0 .. user_<N-1>
    ///
    /// Key n owns one user record (users/rec_<n>) and three orders
    /// (orders/ord_<n>_<j>); reads pick ids from this space.
    #[arg(long, env = "SHARDGATE_KEYS", value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub keys: u64,
    /// Key skew: 0 is uniform, above 0 the Zipf exponent (1.0 typical, key 0 hottest)
    #[arg(long, env = "SHARDGATE_SKEW", value_name = "S", default_value_t = 0.0,
          value_parser = parse_skew)]
    pub skew: f64,
    /// Records per bulk-write request
    #[arg(long, env = "SHARDGATE_BATCH", value_name = "N", default_value_t = 100,
          value_parser = parse_batch)]
    pub batch: usize,
    /// Write the key space before the run: auto (when a scenario reads and the key space
    /// is not complete), always, never
    #[arg(long, env = "SHARDGATE_PREFILL", value_enum, default_value_t = Prefill::Auto)]
    pub prefill: Prefill,
    /// `verify`: records each user owns (and writes; no other user does)
    #[arg(long, env = "SHARDGATE_VERIFY_RECORDS", value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub verify_records: u64,
    /// `verify`: the table its records go in
    #[arg(
        long,
        env = "SHARDGATE_VERIFY_TABLE",
        value_name = "NAME",
        default_value = "users"
    )]
    pub verify_table: String,
    /// `verify`: write the verdict and the whole ledger (every write, its fate, every
    /// token read) to this JSON file
    #[arg(long, env = "SHARDGATE_VERIFY_OUT", value_name = "PATH")]
    pub verify_out: Option<PathBuf>,
    /// Send no load: read back the records of a file written by --verify-out (after a
    /// failover has settled, say) and judge them again
    #[arg(long, value_name = "PATH")]
    pub verify_check: Option<PathBuf>,
    /// `verify`: how long the read-back keeps asking for records that get no usable
    /// answer (5xx, no response) before calling them unreadable
    #[arg(
        long,
        env = "SHARDGATE_VERIFY_WAIT",
        value_name = "SECS",
        default_value_t = 30
    )]
    pub verify_wait: u64,
    /// `verify`: follow the table's change stream beside the writes (Server-Sent
    /// Events, from the table's end at the start) and judge it against the ledger:
    /// every acknowledged write once, in order, transactions whole; its lag
    #[arg(long, env = "SHARDGATE_FOLLOW_CHANGES", value_name = "BOOL",
          default_value_t = true, action = clap::ArgAction::Set)]
    pub follow_changes: bool,
    /// The share of requests whose `traceparent` asks the gateway to sample them, from
    /// 0 to 1 (every request carries one; a gateway that exports traces records the
    /// sampled ones)
    #[arg(long, env = "SHARDGATE_TRACE_RATIO", value_name = "R", default_value_t = 1.0,
          value_parser = parse_ratio)]
    pub trace_ratio: f64,
    /// How many of the slowest requests the summary lists with their trace ids
    #[arg(long, env = "SHARDGATE_TRACE_SLOWEST", value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub trace_slowest: u64,
}

/// When to write the key space before the load starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Prefill {
    /// When a selected scenario reads and a probe finds the first or last key missing.
    Auto,
    /// Whenever a selected scenario reads, even if the records exist.
    Always,
    /// Never: reads of ids that do not exist count as failures.
    Never,
}

impl Prefill {
    /// The value as typed on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Prefill::Auto => "auto",
            Prefill::Always => "always",
            Prefill::Never => "never",
        }
    }
}

/// A scenario and its weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weighted {
    pub kind: ScenarioKind,
    pub weight: usize,
}

/// Largest weight one scenario takes (goose allocates users in a cycle of total weight).
const MAX_WEIGHT: usize = 1000;

impl WorkloadOptions {
    /// Checks what clap cannot see entry by entry: a scenario named twice.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = HashSet::new();
        for entry in &self.scenario {
            if !seen.insert(entry.kind) {
                return Err(format!(
                    "--scenario names `{}` twice; give it once with the total weight",
                    entry.kind
                ));
            }
        }
        Ok(())
    }

    /// What the selected scenarios need prefilled.
    pub fn needs(&self) -> Needs {
        self.scenario
            .iter()
            .fold(Needs::default(), |acc, w| acc.union(w.kind.needs()))
    }

    /// Whether the `verify` scenario runs.
    pub fn verifies(&self) -> bool {
        self.scenario.iter().any(|w| w.kind == ScenarioKind::Verify)
    }

    /// Whether `verify` follows its table's change stream.
    pub fn follows_changes(&self) -> bool {
        self.verifies() && self.follow_changes
    }

    /// `write:1,read:3` as given.
    pub fn describe_scenarios(&self) -> String {
        self.scenario
            .iter()
            .map(|w| format!("{}:{}", w.kind, w.weight))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn parse_weighted(text: &str) -> Result<Weighted, String> {
    let (name, weight) = match text.split_once(':') {
        Some((name, weight)) => (name, Some(weight)),
        None => (text, None),
    };
    let kind = name.parse::<ScenarioKind>()?;
    let weight = match weight {
        None => 1,
        Some(w) => match w.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_WEIGHT).contains(&n) => n,
            _ => {
                return Err(format!(
                    "weight {w:?} of `{kind}` is not a whole number from 1 to {MAX_WEIGHT}"
                ))
            }
        },
    };
    Ok(Weighted { kind, weight })
}

fn parse_skew(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && (0.0..=10.0).contains(&s) => Ok(s),
        _ => Err(format!(
            "{text:?} is not a skew from 0 (uniform) to 10; 1.0 is a typical Zipf exponent"
        )),
    }
}

fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!(
            "{text:?} is not a share from 0 (no request sampled) to 1 (every request)"
        )),
    }
}

fn parse_batch(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_BATCH).contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?} is not a batch size from 1 to {MAX_BATCH} (the gateway's default limit)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("loadtest").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_run_the_write_scenario() {
        let cli = parse(&[]).unwrap();
        assert_eq!(
            cli.workload.scenario,
            vec![Weighted {
                kind: ScenarioKind::Write,
                weight: 1
            }]
        );
        assert_eq!(cli.workload.keys, 10_000);
        assert_eq!(cli.workload.skew, 0.0);
        assert_eq!(cli.workload.prefill, Prefill::Auto);
        assert_eq!(cli.goose.host, None);
    }

    #[test]
    fn ours_and_gooses_options_mix() {
        let cli = parse(&[
            "--host",
            "http://127.0.0.1:18181",
            "--scenario",
            "read:3,write",
            "--users",
            "8",
            "--skew",
            "1.1",
            "-t",
            "10s",
        ])
        .unwrap();
        assert_eq!(cli.workload.describe_scenarios(), "read:3,write:1");
        assert_eq!(cli.goose.users, Some(8));
        assert_eq!(cli.goose.run_time.as_deref(), Some("10s"));
        assert_eq!(cli.goose.host.as_deref(), Some("http://127.0.0.1:18181"));
        assert!(cli.workload.needs().users);
    }

    #[test]
    fn bad_values_are_named() {
        let err = parse(&["--scenario", "reed"]).unwrap_err().to_string();
        assert!(err.contains("no scenario named \"reed\""), "{err}");
        let err = parse(&["--scenario", "read:0"]).unwrap_err().to_string();
        assert!(err.contains("weight \"0\""), "{err}");
        assert!(parse(&["--skew", "-1"]).is_err());
        assert!(parse(&["--batch", "0"]).is_err());
        assert!(parse(&["--keys", "0"]).is_err());
    }

    #[test]
    fn verify_options_parse() {
        let cli = parse(&[
            "--scenario",
            "verify,read",
            "--verify-records",
            "4",
            "--verify-out",
            "v.json",
        ])
        .unwrap();
        assert!(cli.workload.verifies());
        assert_eq!(cli.workload.verify_records, 4);
        assert_eq!(cli.workload.verify_table, "users");
        assert_eq!(cli.workload.verify_out, Some(PathBuf::from("v.json")));
        assert!(!parse(&[]).unwrap().workload.verifies());
        assert!(!parse(&[]).unwrap().workload.follows_changes());
        let verify = |more: &[&str]| {
            let args = [&["--scenario", "verify"], more].concat();
            parse(&args).unwrap().workload.follows_changes()
        };
        assert!(verify(&[]));
        assert!(!verify(&["--follow-changes", "false"]));
        assert!(parse(&["--follow-changes", "maybe"]).is_err());
        assert!(parse(&["--verify-records", "0"]).is_err());
        let cli = parse(&["--verify-check", "v.json"]).unwrap();
        assert_eq!(cli.workload.verify_check, Some(PathBuf::from("v.json")));
    }

    #[test]
    fn a_scenario_given_twice_is_refused() {
        let cli = parse(&["--scenario", "read,read:2"]).unwrap();
        assert!(cli
            .workload
            .validate()
            .unwrap_err()
            .contains("`read` twice"));
    }
}
