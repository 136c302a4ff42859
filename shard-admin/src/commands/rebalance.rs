//! `shard-admin rebalance --plan | --apply`: every shard about the same bytes (or
//! slots, or requests). The bytes are measured now, per slot, on each primary (the rows'
//! on-disk size); the load is every live gateway's requests per slot over the last
//! minute, as they publish it for the cluster view of analytics. The plan
//! ([`control_plane::moves::balance`]) is printed, and `--apply` runs it as ordinary
//! online moves, one after another (each resumable with `moves resume`).

use analytics::cluster::Figures;
use analytics::load::LoadFigures;

use crate::audit::Named;
use crate::commands::moves::{drive, runtime, what};
use control_plane::map::{change, figures, meta, ShardMap};
use control_plane::moves::balance::{plan, totals, Measure, Planned};
use control_plane::moves::plan::Which;
use control_plane::moves::shard_conn::ShardConn;
use control_plane::moves::state::ranges;
use control_plane::moves::{mover, MoveError};
use shard_manager::config::ClusterSettings;
use shard_manager::routing::ShardId;

/// `rebalance`: plan (the default) or apply.
#[derive(Debug, clap::Args)]
pub struct RebalanceArgs {
    /// Print the plan and change nothing (the default).
    #[arg(long, conflicts_with = "apply")]
    pub plan: bool,
    /// Run the planned moves, one after another.
    #[arg(long)]
    pub apply: bool,
    /// What to even out.
    #[arg(long, value_enum, default_value = "bytes")]
    pub by: Measure,
    /// How far apart shards may stay, as a fraction of the mean (0 to 1).
    #[arg(long, default_value_t = 0.05)]
    pub tolerance: f64,
}

impl RebalanceArgs {
    /// The audit line's action and options; `None` for a plan, which changes nothing.
    pub fn audited(&self) -> Option<(&'static str, Named)> {
        let by = match self.by {
            Measure::Bytes => "bytes",
            Measure::Slots => "slots",
            Measure::Load => "load",
        };
        let named = Named {
            options: Some(format!("--by {by} --tolerance {}", self.tolerance)),
            ..Named::default()
        };
        self.apply.then_some(("rebalance --apply", named))
    }
}

/// Each slot's weight now: its rows' bytes on its owner, or 1 per slot.
pub async fn weigh(
    settings: &ClusterSettings,
    map: &ShardMap,
    by: Measure,
) -> Result<Vec<u64>, MoveError> {
    let mut weights = vec![0u64; map.owners.len()];
    if by == Measure::Slots {
        weights.fill(1);
        return Ok(weights);
    }
    if by == Measure::Load {
        let load = load_now(settings).await?;
        if let Some(minute) = load.windows.get(LOAD_WINDOW) {
            for (slot, counts) in &minute.slots {
                if let Some(w) = weights.get_mut(*slot as usize) {
                    *w += counts.requests;
                }
            }
        }
        return Ok(weights);
    }
    for shard in &map.shards {
        let conn = ShardConn::open(settings, map, shard.id).await?;
        let rows = conn
            .client
            .query(
                "SELECT slot, sum(pg_column_size(r.*))::bigint FROM records r GROUP BY slot",
                &[],
            )
            .await
            .map_err(conn.fail("measuring slots"))?;
        for row in rows {
            let (slot, bytes): (i32, i64) = (row.get(0), row.get(1));
            // Rows of a slot the shard no longer owns (a move not yet cleaned) do not count.
            if map.owners.get(slot as usize) == Some(&shard.id) {
                weights[slot as usize] += bytes.max(0) as u64;
            }
        }
    }
    Ok(weights)
}

/// Which of the published windows `--by load` evens out: the last minute (10 s moves
/// with every burst; 10 min is slow to see a move's effect).
const LOAD_WINDOW: usize = 1;
/// Figures older than this are a gateway gone, not load.
const LOAD_MAX_AGE_MS: u64 = 5_000;

/// Every live gateway's load per slot, merged.
pub async fn load_now(settings: &ClusterSettings) -> Result<LoadFigures, MoveError> {
    let conn = meta::connect(settings).await?;
    let published = figures::recent(&conn.client, LOAD_MAX_AGE_MS).await?;
    let mut load = LoadFigures::default();
    for figures in published
        .iter()
        .filter_map(|p| Figures::from_bytes(&p.figures))
    {
        load.merge(&figures.load);
    }
    if load.windows.iter().all(|w| w.slots.is_empty()) {
        return Err(MoveError::Refused(format!(
            "no gateway published any load in the last {} s: --by load needs gateways serving \
             traffic with analytics.load_per_slot on",
            LOAD_MAX_AGE_MS / 1000
        )));
    }
    Ok(load)
}

/// What moving slots cannot fix: a slot, or a key, that alone takes more than a shard's
/// fair share of the requests. Empty when there is none.
pub fn beyond_slots(map: &ShardMap, weights: &[u64], load: &LoadFigures) -> String {
    let active = map.shards.iter().filter(|s| !s.retired).count().max(1) as u64;
    let total: u64 = weights.iter().sum();
    let fair = total / active;
    let mut out = String::new();
    for (slot, w) in weights.iter().enumerate() {
        if fair > 0 && *w > fair {
            out += &format!(
                "slot {slot} alone takes {w} of {total} requests, more than a shard's fair share ({fair}): moving it only moves the bottleneck\n"
            );
        }
    }
    let minute_secs = load.windows.get(LOAD_WINDOW).map_or(60, |w| w.secs.max(1));
    for key in &load.hot_keys {
        // The sketch counts over one to two minutes; brought to the minute compared.
        let per_minute = key.count * minute_secs / load.hot_keys_secs.max(1);
        if fair > 0 && per_minute > fair {
            out += &format!(
                "key {:?} (slot {}) alone takes about {per_minute} requests a minute, more than a shard's fair share ({fair}): no slot move can spread one key; serve its reads from the cache ([cache] enabled) or split the key\n",
                key.key, key.slot
            );
        }
    }
    out
}

/// The plan for `map`, weighed now, with `retired` shards emptied.
pub async fn plan_for(
    settings: &ClusterSettings,
    map: &ShardMap,
    by: Measure,
    tolerance: f64,
    retired: &[ShardId],
) -> Result<(Vec<Planned>, Vec<u64>), MoveError> {
    if !(0.0..=1.0).contains(&tolerance) {
        return Err(MoveError::Refused(format!(
            "--tolerance {tolerance} is not a fraction between 0 and 1 (0.05 = within 5% of the mean)"
        )));
    }
    let weights = weigh(settings, map, by).await?;
    let moves = plan(&map.owners, &weights, map.shards.len(), tolerance, retired);
    Ok((moves, weights))
}

/// Per-shard totals before and after the plan, and its moves, as text.
pub fn describe(map: &ShardMap, weights: &[u64], moves: &[Planned], by: Measure) -> String {
    let unit = |n: u64| match by {
        Measure::Bytes if n < 1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        Measure::Bytes => format!("{:.1} MiB", n as f64 / 1_048_576.0),
        Measure::Slots => format!("{n} slots"),
        Measure::Load => format!("{n} requests/min"),
    };
    let before = totals(&map.owners, weights, map.shards.len());
    let mut owners = map.owners.clone();
    for m in moves {
        for s in &m.slots {
            owners[*s as usize] = m.to;
        }
    }
    let after = totals(&owners, weights, map.shards.len());
    let mut out = String::new();
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        let retired = if map.shards[i].retired {
            " (retired)"
        } else {
            ""
        };
        out += &format!("shard-{i}: {} -> {}{retired}\n", unit(*b), unit(*a));
    }
    if moves.is_empty() {
        out += "balanced: nothing to move\n";
    }
    for m in moves {
        out += &format!(
            "move {} slot(s) {} from {} to {} ({})\n",
            m.slots.len(),
            ranges(&m.slots),
            m.from,
            m.to,
            unit(m.weight)
        );
    }
    out
}

/// Runs `moves` one after another; their summaries.
pub fn apply(
    rt: &tokio::runtime::Runtime,
    settings: &ClusterSettings,
    kind: &str,
    moves: &[Planned],
) -> Result<String, MoveError> {
    let mut out = String::new();
    for m in moves {
        let list: Vec<String> = m.slots.iter().map(i32::to_string).collect();
        let request = mover::Request {
            kind: kind.into(),
            from: m.from.0,
            to: m.to.0,
            which: Which::List(list.join(",")),
        };
        let mv = rt.block_on(mover::start(settings, &request))?;
        eprintln!("move {}: {}", mv.id, what(&mv));
        out += &drive(rt, settings, mv.id)?;
    }
    Ok(out)
}

/// Runs `rebalance`; what to print.
pub fn rebalance(settings: &ClusterSettings, args: RebalanceArgs) -> Result<String, MoveError> {
    let rt = runtime()?;
    let map = rt.block_on(change::current(settings))?;
    let retired = map.retired();
    let (moves, weights) =
        rt.block_on(plan_for(settings, &map, args.by, args.tolerance, &retired))?;
    let mut out = describe(&map, &weights, &moves, args.by);
    if args.by == Measure::Load {
        out += &beyond_slots(&map, &weights, &rt.block_on(load_now(settings))?);
    }
    if args.apply && !moves.is_empty() {
        out += &apply(&rt, settings, "rebalance", &moves)?;
    } else if !moves.is_empty() {
        out += "plan only: run with --apply to move them\n";
    }
    Ok(out)
}
