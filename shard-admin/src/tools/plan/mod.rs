//! `shard-admin plan --add-shard`: for the data the shards hold now, exactly how many
//! records and bytes each strategy would move if one shard were added.
//!
//! Every strategy is compared on the same keys: the configured one as configured, the
//! others as they would be set up for this cluster (`slots`: even ranges of
//! `slot_count` slots; `modulo`: N → N+1; `hash_ring`: `routing.vnodes` points per
//! shard; `range`: the current keys cut into N ranges of equal record counts, the
//! busiest split at its middle key). Each one's `with_added_shard()` gives the
//! placement after; a key moves when the two placements differ.
//!
//! ## Layout
//! - [`count`]: the pure tally of moves per strategy and per (from, to).
//! - [`quantiles`]: the data-derived range map for clusters not routed by range.
//! - [`scan`]: streaming every key's record count and bytes from every primary.
//! - [`report`]: the table and the JSON.

pub mod count;
pub mod quantiles;
pub mod report;
pub mod scan;

pub use count::{Amount, Counts, Flow, MoveCounter, Scenario, Tally};

use serde::Serialize;

use crate::connect::CommandError;
use shard_manager::config::{ClusterSettings, Strategy};
use shard_manager::routing::strategy::{HashRing, Layout, Modulo, SlotMap};
use shard_manager::routing::Router;
use shard_manager::store::table::Tables;

/// The plan: the counts, and what the reader should know about how they were made.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The strategy the cluster routes with.
    pub configured: Strategy,
    /// The `--table` filter, if any.
    pub table: Option<String>,
    #[serde(flatten)]
    pub counts: Counts,
    pub notes: Vec<String>,
}

/// Reads every key from every primary and counts what each strategy would move.
/// `router` as `ClusterSettings::validate` returned it.
pub fn plan_add_shard(
    settings: &ClusterSettings,
    router: &Router,
    table: Option<&str>,
) -> Result<Plan, CommandError> {
    if let Some(name) = table {
        Tables::new(settings.tables.allowed.clone())
            .parse(name)
            .map_err(|e| CommandError::Usage(e.to_string()))?;
    }
    let routing = &settings.routing;
    let shards = router.shard_count();
    let configured = router.strategy();
    let mut notes = Vec::new();
    let mut scenarios = Vec::new();
    let mut push = |label: &str, strategy: Strategy, default: Layout| {
        let is_configured = strategy == configured;
        let layout = if is_configured {
            router.layout().clone()
        } else {
            default
        };
        scenarios.push(Scenario::adding_to(label, layout, is_configured));
    };
    push(
        "slots",
        Strategy::Slots,
        Layout::Slots(SlotMap::even(routing.slot_count, shards)),
    );
    push(
        "modulo",
        Strategy::Modulo,
        Layout::Modulo(Modulo::new(shards, routing.numeric)),
    );
    push(
        "hash_ring",
        Strategy::HashRing,
        Layout::HashRing(HashRing::new(shards, routing.vnodes)),
    );
    if configured == Strategy::Range {
        scenarios.push(Scenario::adding_to(
            "range (midpoint split)",
            router.layout().clone(),
            true,
        ));
    } else {
        let total = scan::count_records(settings, table)?;
        let mut finder = quantiles::QuantileFinder::new(total, shards, router.is_numeric());
        scan::each_key_in_order(settings, table, router.is_numeric(), |row| {
            finder.observe(&row.shard_key, row.records.max(0) as u64)
        })?;
        match finder.finish() {
            Ok((before, after)) => scenarios.push(Scenario {
                label: "range (quantiles, median split)".into(),
                configured: false,
                before: Layout::Range(before),
                after: Layout::Range(after),
            }),
            Err(why) => notes.push(format!("range: not compared: {why}")),
        }
    }
    let mut counter = MoveCounter::new(scenarios, shards, router.is_numeric());
    scan::each_key(settings, table, |shard, row| {
        counter.observe(
            shard_manager::ShardId(shard as u32),
            &row.shard_key,
            Amount::new(row.records.max(0) as u64, row.bytes.max(0) as u64),
        )
    })?;
    let counts = counter.finish();
    if counts.misplaced.records > 0 {
        notes.push(format!(
            "{} records are on a shard other than the one the configured strategy gives \
             their key; they are counted where the strategy places them",
            report::thousands(counts.misplaced.records)
        ));
    }
    notes.push(
        "bytes: pg_column_size of each stored row; each shard is read in one snapshot, \
         shard after shard"
            .into(),
    );
    Ok(Plan {
        configured,
        table: table.map(str::to_owned),
        counts,
        notes,
    })
}
