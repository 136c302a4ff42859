//! `shard-admin remove-shard --shard N`: every slot of the shard moves away online,
//! each to the lightest remaining shard by bytes (one move per destination, each
//! resumable with `moves resume`), then the shard is retired: it stays in the map owning
//! nothing, gateways stop counting it, and its servers can be stopped. A refused command
//! (no such shard, already retired, the last active one) changes nothing.

use crate::audit::Named;
use crate::commands::moves::runtime;
use crate::commands::rebalance::{apply, describe, plan_for};
use control_plane::map::change;
use control_plane::map::remove_shard::{check, retire};
use control_plane::moves::balance::Measure;
use control_plane::moves::MoveError;
use shard_manager::config::ClusterSettings;
use shard_manager::routing::ShardId;

/// `remove-shard`: which shard.
#[derive(Debug, clap::Args)]
pub struct RemoveShardArgs {
    /// The shard to empty and retire.
    #[arg(long)]
    pub shard: u32,
}

impl RemoveShardArgs {
    /// What the audit line names: the shard.
    pub fn named(&self) -> Named {
        Named {
            shard: Some(ShardId(self.shard).to_string()),
            ..Named::default()
        }
    }
}

/// Runs `remove-shard`; the summary to print.
pub fn remove_shard(
    settings: &ClusterSettings,
    args: RemoveShardArgs,
) -> Result<String, MoveError> {
    let rt = runtime()?;
    let id = ShardId(args.shard);
    let map = rt.block_on(change::current(settings))?;
    check(&map, id)?;
    let mut retired = map.retired();
    retired.push(id);
    // Tolerance 1: the drain only (each slot to the lightest shard keeps them even).
    let (moves, weights) = rt.block_on(plan_for(settings, &map, Measure::Bytes, 1.0, &retired))?;
    let mut out = describe(&map, &weights, &moves, Measure::Bytes);
    out += &apply(&rt, settings, "remove-shard", &moves)?;
    let map = rt.block_on(retire(settings, id))?;
    out += &format!(
        "{id} retired at {}: it owns no slot; its servers ({}) can be stopped\n",
        map.version,
        map.shards[id.index()].primary
    );
    Ok(out)
}
