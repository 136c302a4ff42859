//! `shard-admin bench`: the same workload against one database and against the
//! sharded topology, side by side.
//!
//! Two scratch databases are dropped and created afresh, with the embedded migrations:
//! `sgbench_single` on shard 0's primary (every row in one place) and `sgbench` on every
//! primary (rows routed by the configured strategy, `slot` stored as the gateway does).
//! Each target gets `--clients` threads, each holding its own connections (one, or one
//! per shard), taking operations from a shared counter. Phases, in order:
//! - `upsert`: every record once, one row per statement (the gateway's upsert);
//! - `read by id`: every record once, by (table, shard key, id), in shuffled order;
//! - `list by key`: each shard key's newest 50 records (one shard when sharded);
//! - `page (fan-out)`: the table's newest 50 records (every shard when sharded, merged).
//!
//! Each operation's latency is timed on its own; ops/s is operations over the phase's
//! wall-clock time. Records come from [`super::generate`] (`users`, seed `--seed`).

//!
//! ## Layout
//! - [`workload`]: the records, the phases' operations and the client threads.
//! - [`records_table`]: the `records` table as diesel sees it, and a document as
//!   `jsonb` text.
//! - [`report`]: latency percentiles and the side-by-side table.

pub mod records_table;
pub mod report;
pub mod workload;

use std::time::Instant;

use super::generate::Generator;
use super::progress::Bars;
use crate::connect::{connect, recreate_scratch, CommandError};
use records_table::JsonText;
use shard_manager::config::ClusterSettings;
use shard_manager::routing::{RoutedKey, Router, ShardKey};
use workload::{Client, Phase, Row, Workload};

/// The scratch database on shard 0's primary that holds every row.
pub const SINGLE_DB: &str = "sgbench_single";
/// The scratch database on every primary that holds the routed rows.
pub const SHARDED_DB: &str = "sgbench";
/// The logical table the workload writes.
pub const TABLE: &str = "users";
/// Rows per list page.
pub const PAGE: i64 = 50;
/// Largest `--rows`: the workload is generated up front and held in memory (about
/// 2 KiB per `users` record), so generation never shows up in the timings.
const MAX_ROWS: u64 = 1_000_000;
/// Largest `--clients`: each sharded client holds one connection per shard.
const MAX_CLIENTS: usize = 64;

/// `bench` options.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Records written, then read, per target.
    #[arg(long, default_value_t = 20_000)]
    pub rows: u64,
    /// Concurrent clients per target, each with its own connections.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// The seed of the generated records.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs the workload on both targets and renders the comparison.
pub fn bench(
    settings: &ClusterSettings,
    router: &Router,
    args: &BenchArgs,
) -> Result<String, CommandError> {
    if !(1..=MAX_ROWS).contains(&args.rows) || !(1..=MAX_CLIENTS).contains(&args.clients) {
        return Err(CommandError::Usage(format!(
            "--rows must be 1 to {MAX_ROWS} and --clients 1 to {MAX_CLIENTS}"
        )));
    }
    let db = &settings.database;
    let primaries: Vec<String> = settings.shards.iter().map(|s| s.primary.clone()).collect();
    recreate_scratch(db, &primaries[0], SINGLE_DB)?;
    for p in &primaries {
        recreate_scratch(db, p, SHARDED_DB)?;
    }
    let keys = (args.rows / 10).max(1);
    let generator = Generator::new(TABLE, args.seed, keys, router.is_numeric());
    let rows = (0..args.rows)
        .map(|n| {
            let g = generator.record(n);
            let p = route(router, &g.shard_key)?.placement();
            Ok(Row {
                key: g.shard_key,
                id: g.id,
                slot: p.slot.0 as i32,
                shard: p.shard.index(),
                data: JsonText(g.data.to_string()),
            })
        })
        .collect::<Result<Vec<_>, CommandError>>()?;
    let keys_routed = (0..keys)
        .map(|k| {
            let name = generator.key_name(k);
            Ok((route(router, &name)?.shard().index(), name))
        })
        .collect::<Result<Vec<_>, CommandError>>()?;
    let workload = Workload {
        rows,
        keys: keys_routed,
    };

    let targets = [
        ("single", vec![primaries[0].clone()], SINGLE_DB),
        ("sharded", primaries.clone(), SHARDED_DB),
    ];
    let mut results = Vec::new();
    for (name, servers, dbname) in &targets {
        let mut clients = (0..args.clients)
            .map(|_| {
                let conns = servers
                    .iter()
                    .map(|s| Ok((s.clone(), connect(db, s, dbname)?)))
                    .collect::<Result<Vec<_>, CommandError>>()?;
                Ok(Client { conns })
            })
            .collect::<Result<Vec<_>, CommandError>>()?;
        let mut per_phase = Vec::new();
        for phase in Phase::ALL {
            let ops = match phase {
                Phase::Upsert | Phase::Read => args.rows,
                Phase::List => keys,
                Phase::Page => (args.rows / 100).max(50),
            };
            let bars = Bars::single(&format!("{name}: {}", phase.label()), ops);
            let started = Instant::now();
            let micros =
                workload::run_phase(&mut clients, &workload, phase, ops, &bars.tracker(0))?;
            let elapsed = started.elapsed();
            bars.finish();
            per_phase.push(report::measure(micros, elapsed));
        }
        results.push(per_phase);
    }
    Ok(report::render(args, router, &primaries, &results))
}

/// A generated key, routed as the gateway would route it.
fn route(router: &Router, key: &str) -> Result<RoutedKey, CommandError> {
    let key = ShardKey::parse(key).map_err(|e| CommandError::Usage(e.to_string()))?;
    router
        .route(key)
        .map_err(|e| CommandError::Usage(e.to_string()))
}
