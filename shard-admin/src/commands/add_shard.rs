//! `shard-admin add-shard`: a new primary (and its replicas) joins the cluster and
//! takes its fair share of the slots, moved online from the shards that own the most,
//! one move per source (each resumable with `moves resume`, like `move-slots`). The new
//! server is migrated first; it joins the map owning nothing, so gateways add its pools
//! before any key is routed to it, and gets every recorded query index (built and
//! waited for) before its first slot. Before each move it says where the whole command
//! stands (move i of n, slots moved of all, and the time left for all at the rate so
//! far); prints a summary of every move at the end.

use crate::audit::Named;
use crate::commands::moves::{drive, runtime, what};
use crate::migrate::migrate_server;
use control_plane::indexes::new_shard::ready_for_slots;
use control_plane::map::add_shard::{add_shard as join, NewShard};
use control_plane::map::change;
use control_plane::moves::plan::Which;
use control_plane::moves::{mover, MoveError};
use shard_manager::config::ClusterSettings;
use shard_manager::routing::ShardId;

/// The longest wait for the new shard's indexes (empty, they build in moments; a
/// gateway's reconciler may be building one already).
const INDEX_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// `add-shard`: the new shard's servers.
#[derive(Debug, clap::Args)]
pub struct AddShardArgs {
    /// The new shard's primary, host:port: a running PostgreSQL where the cluster's
    /// database and role exist (its schema is applied here).
    #[arg(long)]
    pub primary: String,
    /// A replica of it, host:port (repeat for several).
    #[arg(long = "replica")]
    pub replicas: Vec<String>,
    /// Join the map only; move no slot (`move-slots --to` moves some later).
    #[arg(long)]
    pub no_move: bool,
}

impl AddShardArgs {
    /// What the audit line names: the new shard's servers.
    pub fn named(&self) -> Named {
        let mut servers = format!("primary {}", self.primary);
        if !self.replicas.is_empty() {
            servers += &format!(", replicas {}", self.replicas.join(","));
        }
        Named {
            servers: Some(servers),
            options: self.no_move.then(|| "--no-move".to_owned()),
            ..Named::default()
        }
    }
}

/// How many slots each shard gives so that a new one gets `total / (n + 1)` (`n`: the
/// shards that own slots; retired ones own none): always from the shard that holds
/// the most at that point (ties: the lowest id).
pub fn fair_share(owned: &[u32]) -> Vec<(ShardId, u32)> {
    let total: u32 = owned.iter().sum();
    let active = owned.iter().filter(|n| **n > 0).count() as u32;
    let wanted = total / (active + 1);
    let mut left = owned.to_vec();
    let mut given = vec![0u32; owned.len()];
    for _ in 0..wanted {
        let Some((richest, _)) = left
            .iter()
            .enumerate()
            .max_by_key(|(i, n)| (**n, std::cmp::Reverse(*i)))
        else {
            break;
        };
        left[richest] -= 1;
        given[richest] += 1;
    }
    given
        .into_iter()
        .enumerate()
        .filter(|(_, n)| *n > 0)
        .map(|(i, n)| (ShardId(i as u32), n))
        .collect()
}

/// Where the whole command stands before a move: the slots moved of all, and once one
/// move has finished, the time left for all at the rate so far.
fn overall(moved: u32, all: u32, elapsed_secs: f64) -> String {
    let done = format!("{moved} of {all} slots moved");
    if moved == 0 || elapsed_secs <= 0.0 {
        return done;
    }
    let left = f64::from(all - moved.min(all)) * elapsed_secs / f64::from(moved);
    format!("{done} in {elapsed_secs:.0} s; about {left:.0} s left for all at that rate")
}

/// Runs `add-shard`; the summary to print.
pub fn add_shard(settings: &ClusterSettings, args: AddShardArgs) -> Result<String, MoveError> {
    let rt = runtime()?;
    let new = NewShard {
        primary: args.primary,
        replicas: args.replicas,
    };
    // Checked against the map before the server is touched.
    let map = rt.block_on(change::current(settings))?;
    control_plane::map::add_shard::with_shard(&map, &new)?;
    let applied = migrate_server(settings, &new.primary)
        .map_err(|e| MoveError::Refused(format!("the new primary: {e}")))?;
    eprintln!(
        "{}: schema applied ({} migration(s))",
        new.primary,
        applied.len()
    );
    let (map, id) = rt.block_on(join(settings, &new))?;
    let mut summary = format!(
        "{id} joined the map at {} (primary {})\n",
        map.version, new.primary
    );
    // Every recorded index on the new shard before a slot moves there: its queries
    // would scan otherwise. A build that fails or does not end stops the command here,
    // the shard in the map with no slots.
    let built = rt
        .block_on(ready_for_slots(settings, id, INDEX_WAIT))
        .map_err(|e| {
            MoveError::Refused(format!(
                "{id} joined the map at {} but holds no slots: {e}; see `shard-admin index \
                 list`, then give it slots with `shard-admin move-slots --to {}`",
                map.version, id.0
            ))
        })?;
    if !built.is_empty() {
        summary += &format!("{id} holds every index: {}\n", built.join(", "));
    }
    if args.no_move {
        summary += "no slots moved (--no-move): `shard-admin move-slots --to ...` gives it some\n";
        return Ok(summary);
    }
    // The others' slots (the shard itself owns none yet; retired ones own none).
    let owned: Vec<u32> = (0..map.shards.len())
        .map(|i| map.owners.iter().filter(|o| o.index() == i).count() as u32)
        .collect();
    let shares = fair_share(&owned);
    let all: u32 = shares.iter().map(|(_, n)| n).sum();
    let started = std::time::Instant::now();
    let mut moved = 0;
    for (i, (source, count)) in shares.iter().enumerate() {
        eprintln!(
            "add-shard: move {} of {} ({count} slots); {}",
            i + 1,
            shares.len(),
            overall(moved, all, started.elapsed().as_secs_f64())
        );
        let request = mover::Request {
            kind: "add-shard".into(),
            from: source.0,
            to: id.0,
            which: Which::Count(*count),
        };
        let mv = rt.block_on(mover::start(settings, &request))?;
        eprintln!("move {}: {}", mv.id, what(&mv));
        summary += &drive(&rt, settings, mv.id)?;
        moved += count;
    }
    summary += &format!(
        "{} move(s): {moved} slots in {:.1} s\n",
        shares.len(),
        started.elapsed().as_secs_f64()
    );
    let map = rt.block_on(change::current(settings))?;
    let slots = map.owners.iter().filter(|o| **o == id).count();
    summary += &format!(
        "{id} owns {slots} of {} slots at {}\n",
        map.owners.len(),
        map.version
    );
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_command_says_how_far_it_is_and_how_long_is_left() {
        assert_eq!(overall(0, 256, 0.0), "0 of 256 slots moved");
        assert_eq!(
            overall(86, 256, 12.0),
            "86 of 256 slots moved in 12 s; about 24 s left for all at that rate"
        );
        assert_eq!(
            overall(256, 256, 30.0),
            "256 of 256 slots moved in 30 s; about 0 s left for all at that rate"
        );
    }

    #[test]
    fn the_new_shard_gets_an_even_share_from_the_richest() {
        assert_eq!(
            fair_share(&[342, 341, 341]),
            vec![(ShardId(0), 86), (ShardId(1), 85), (ShardId(2), 85)]
        );
        let given: u32 = fair_share(&[342, 341, 341]).iter().map(|g| g.1).sum();
        assert_eq!(given, 1024 / 4);
        // An uneven cluster gives from its largest shard first.
        assert_eq!(fair_share(&[600, 200, 224]), vec![(ShardId(0), 256)]);
        assert_eq!(fair_share(&[]), vec![]);
        // A retired shard (owning nothing) neither gives nor counts.
        assert_eq!(
            fair_share(&[512, 0, 512]),
            vec![(ShardId(0), 171), (ShardId(2), 170)]
        );
    }
}
