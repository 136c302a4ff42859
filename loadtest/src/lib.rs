//! Shardgate's load generator: goose scenarios against a running gateway.
//!
//! Exit status: 0, 1 on an error, 3 when the `verify` verdict does not hold.
//!
//! # Running it
//!
//! Start the topology and a gateway (`./setup.sh run` serves http://127.0.0.1:8080),
//! then, from the workspace root:
//!
//! ```sh
//! # The default: the `write` scenario against http://127.0.0.1:8080, one user per CPU,
//! # until Ctrl-C (the summary still prints).
//! cargo run --release -p loadtest
//!
//! # The acceptance run: 8 users, 10 s once all have started.
//! cargo run --release -p loadtest -- --host http://127.0.0.1:8080 --users 8 --run-time 10s
//!
//! # Reads against writes, 3:1, over 100k hot-skewed keys, all users started at once.
//! cargo run --release -p loadtest -- --scenario read:3,write:1 --keys 100000 --skew 1.1 \
//!     -u 16 -r 16 -t 1m
//!
//! # Bulk ingestion in batches of 500, with goose's HTML report.
//! cargo run --release -p loadtest -- --scenario bulk-write --batch 500 -t 30s \
//!     --report-file report.html
//!
//! # Our options also come from the environment; the flag wins.
//! SHARDGATE_SCENARIO=ryw SHARDGATE_SKEW=1.0 cargo run --release -p loadtest -- -t 10s
//! ```
//!
//! `--help` lists every option: goose's (`--host`, `--users`, `--increase-rate`,
//! `--run-time`, `--report-file`, `--throttle-requests`, ...) and ours under "Shardgate
//! workload":
//!
//! - `--scenario NAME[:WEIGHT],...` (default `write`): `write`, `read`, `read-strong`,
//!   `read-cached`, `list`, `bulk-write`, `fan-out`, `query`, `mixed`, `ryw`, `live`, `verify`;
//!   users are shared out by weight. See [`scenarios`] for what each sends. Goose's own `--scenarios` only
//!   filters among these.
//! - `--keys N` (default 10000): the key space, `user_0 .. user_{N-1}`.
//! - `--skew S` (default 0): 0 uniform, above 0 Zipf with exponent S (key 0 hottest).
//! - `--batch N` (default 100): records per `bulk-write` request.
//! - `--prefill auto|always|never` (default auto): write the key space before the run.
//! - `--trace-ratio R` (default 1): the share of requests whose `traceparent` asks the
//!   gateway to sample them (every scenario request carries one); `--trace-slowest N`
//!   (default 10): how many of the slowest requests the summary lists with trace ids.
//! - `--verify-records N`, `--verify-table NAME`, `--verify-out PATH`, `--verify-wait
//!   SECS`: the `verify` scenario's records per user, table, saved ledger and read-back
//!   patience; `--verify-check PATH` reads a saved ledger back with no load.
//! - `--follow-changes true|false` (default true): `verify` follows its table's change
//!   stream beside the writes and judges it too (see [`verify`]).
//!
//! Goose's telnet controller is off (no port opened); goose 0.19's WebSocket controller
//! is off unless `--websocket`. Goose's HTML report draws its charts with a script from
//! a CDN; nothing here needs the report.
//!
//! # What a run does
//!
//! 1. `GET /api/health`: stops with a hint when nothing answers.
//! 2. Prefill, when a selected scenario reads: bulk-writes every key's records once
//!    (skipped when they are already there) and waits for the replicas to show them, so
//!    a read's 404 is a real failure.
//! 3. Goose runs the scenarios and prints its report.
//! 4. The summary: goose's client-side figures per request and how busy the load tester
//!    itself was (its CPU per request and share of the cores), next to the gateway's
//!    server-side percentiles per endpoint, shard and role from
//!    `GET /api/analytics/metrics?window=<measured seconds>s` (said and skipped if the
//!    gateway answers 404), then notes: `ryw` misses, `read-cached`'s `x-cache` answers,
//!    and a gateway that predates a scenario's feature (fan-out answered 400).
//! 5. With `verify`: every record it wrote read back from its primary, and the verdict
//!    (see [`verify`]); with the change stream followed (from before the first write),
//!    the stream's verdict, rate and lag.
//!
//! # Layout
//!
//! - [`options`]: the command line, goose's configuration and [`options::WorkloadOptions`].
//! - [`run`]: one invocation from health check to summary.
//! - [`keys`]: the key space, uniform or Zipf draws (`rand_distr`), and the names derived
//!   from a key.
//! - [`records`]: fake users and orders.
//! - [`workload`]: what every user shares, and the `ryw` counters.
//! - [`http`]: one request through goose, its body drained and its headers read.
//! - [`scenarios`]: the scenarios, one file per family.
//! - [`own_cpu`]: the load tester's own CPU over the measured span, for the summary.
//! - [`gateway`]: requests outside the load (health, prefill, analytics).
//! - [`prefill`]: the warm-up that writes the key space.
//! - [`server_report`]: the gateway's analytics report, read leniently.
//! - [`summary`]: the end-of-run summary.
//! - [`traces`]: the `traceparent` every scenario request carries, and the slowest
//!   requests with their trace ids.
//! - [`verify`]: the verify mode's ledger, read-back and verdict (lost, applied twice,
//!   stale token reads), and its change stream's consumer and verdict.

pub mod gateway;
pub mod http;
pub mod keys;
pub mod options;
pub mod own_cpu;
pub mod prefill;
pub mod records;
pub mod run;
pub mod scenarios;
pub mod server_report;
pub mod summary;
pub mod traces;
pub mod verify;
pub mod workload;

pub use run::run;
