//! `shard-admin init` and `shard-admin map ...`: the shard map in the metadata
//! database, seen and changed from the command line. Each command prints what it did
//! and ends with a one-line summary; a refused command changed nothing and says why.

use std::time::Instant;

use crate::audit::Named;
use control_plane::map::{change, meta, MapError, ShardMap};
use shard_manager::config::ClusterSettings;
use shard_manager::routing::Router;

/// The `map` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum MapCommand {
    /// Print the stored map: version, strategy, every shard's servers and slots.
    Show,
    /// Print the newest changes: version, when, who, what.
    History {
        /// How many changes to print.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Give slots to shards: entries SLOTS=SHARD, e.g. `0-99=1 512=2`. Slots not
    /// named keep their owner (with --all, the entries must name every slot).
    /// Moves no data: rows already stored in a moved slot stay where they are.
    AssignSlots {
        #[arg(required = true)]
        entries: Vec<String>,
        /// The entries are the whole assignment: a slot they leave out is refused.
        #[arg(long)]
        all: bool,
    },
    /// Tell every shard the stored map again (after a shard missed a change).
    Sync,
}

impl MapCommand {
    /// The audit line's action and what it names; `None` for a read-only command.
    pub fn audited(&self, settings: &ClusterSettings) -> Option<(&'static str, Named)> {
        match self {
            Self::Show | Self::History { .. } => None,
            Self::AssignSlots { entries, all } => Some((
                "map assign-slots",
                Named {
                    slots: Some(entries.join(" ")),
                    options: all.then(|| "--all".to_owned()),
                    ..Named::default()
                },
            )),
            Self::Sync => Some(("map sync", metadata(settings))),
        }
    }
}

/// The metadata database, as an audit line names it (`init`, `map sync`).
pub fn metadata(settings: &ClusterSettings) -> Named {
    Named {
        database: Some(format!(
            "{}/{}",
            settings.metadata.address, settings.metadata.dbname
        )),
        ..Named::default()
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, MapError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| MapError::Invalid(format!("cannot start a runtime: {e}")))
}

/// `shard-admin init`: seed the metadata database from the configuration (once),
/// then tell every shard its slots.
/// Records every promotion the stored map has not followed yet (a primary replaced by
/// its HA manager while no gateway ran), as a gateway's watcher would; a line for each.
/// Nothing when there is no map yet or the metadata database does not answer (the
/// command that asked then works from what it has, as before).
pub fn follow_promotions(settings: &ClusterSettings) -> Vec<String> {
    let Ok(rt) = runtime() else {
        return Vec::new();
    };
    let mut lines: Vec<String> =
        match rt.block_on(control_plane::failover::reconcile::once(settings)) {
            Ok(followed) => followed.iter().map(ToString::to_string).collect(),
            Err(e) => {
                tracing::debug!(error = %e, "promotions not followed");
                Vec::new()
            }
        };
    // Behind an address: the primary's identity, the first time it is seen.
    match rt.block_on(control_plane::failover::identity::once(settings)) {
        Ok(recorded) => lines.extend(recorded.iter().map(ToString::to_string)),
        Err(e) => tracing::debug!(error = %e, "identities not recorded"),
    }
    lines
}

pub fn init(settings: &ClusterSettings) -> Result<String, MapError> {
    let started = Instant::now();
    let mut out: String = follow_promotions(settings)
        .into_iter()
        .map(|line| line + "\n")
        .collect();
    let done = runtime()?.block_on(change::init(settings))?;
    if done.seeded {
        out += &format!(
            "seeded the metadata database ({}/{}) from the configuration as map {}\n",
            settings.metadata.address, settings.metadata.dbname, done.map.version
        );
    } else {
        out += &format!(
            "the metadata database already holds map {}: kept (it is the truth; the config file only seeds it)\n",
            done.map.version
        );
        for d in &done.differences {
            out += &format!("  note: the configuration differs: {d}\n");
        }
    }
    for t in &done.told {
        out += &format!(
            "{}: owns {} slot(s) at {} ({} gained, {} dropped)\n",
            t.shard,
            done.map.slots_of(t.shard).len(),
            done.map.version,
            t.gained,
            t.lost
        );
    }
    // Behind an address: the primary's identity, now that the map is there.
    let recorded = runtime()?.block_on(control_plane::failover::identity::once(settings))?;
    for r in &recorded {
        out += &format!("{r}\n");
    }
    out += &format!(
        "init done in {} ms: map {}, {} shards told\n",
        started.elapsed().as_millis(),
        done.map.version,
        done.told.len()
    );
    Ok(out)
}

/// Runs one `map` subcommand; returns what to print.
pub fn run(settings: &ClusterSettings, command: MapCommand) -> Result<String, MapError> {
    let rt = runtime()?;
    match command {
        MapCommand::Show => Ok(show(&rt.block_on(change::current(settings))?)),
        MapCommand::History { limit } => {
            if !(1..=10_000).contains(&limit) {
                return Err(MapError::Invalid(format!(
                    "--limit {limit} is out of range; use 1 to 10000"
                )));
            }
            let lines = rt.block_on(async {
                let conn = meta::connect(settings).await?;
                meta::history_lines(&conn.client, limit).await
            })?;
            let mut out = format!(
                "{:<8} {:<21} {:<24} {:<13} WHAT\n",
                "VERSION", "WHEN (UTC)", "WHO", "ACTION"
            );
            for l in &lines {
                // A note (the automatic balancer's decision) changed no map: its
                // version, in brackets, is the one it saw.
                let version = if l.note {
                    format!("(v{})", l.version)
                } else {
                    format!("v{}", l.version)
                };
                out += &format!(
                    "{:<8} {:<21} {:<24} {:<13} {}\n",
                    version, l.at, l.actor, l.action, l.summary
                );
            }
            let notes = lines.iter().filter(|l| l.note).count();
            out += &format!("{} change(s) shown", lines.len() - notes);
            if notes > 0 {
                out += &format!(
                    ", {notes} balancer decision(s) between them (in brackets: the map they saw; they change nothing)"
                );
            }
            out += "\n";
            Ok(out)
        }
        MapCommand::AssignSlots { entries, all } => {
            let started = Instant::now();
            let done = rt.block_on(change::assign(settings, &entries, all))?;
            if done.changes.is_empty() {
                return Ok(format!(
                    "nothing to change: every named slot already belongs to that shard; the map stays at {}\n",
                    done.before
                ));
            }
            Ok(format!(
                "{}\nmap {} -> {} in {} ms: {} slot(s) changed owner; every shard was told, gateways follow within a second\nnote: no rows were moved; rows already stored in those slots stay on their old shard, which now refuses them\n",
                change::summary(&done.changes),
                done.before,
                done.map.version,
                started.elapsed().as_millis(),
                done.changes.len()
            ))
        }
        MapCommand::Sync => {
            let (map, told) = rt.block_on(change::sync(settings))?;
            let mut out = String::new();
            for t in &told {
                out += &format!(
                    "{}: told map {} ({} gained, {} dropped)\n",
                    t.shard, map.version, t.gained, t.lost
                );
            }
            out += &format!(
                "sync done: {} shards follow map {}\n",
                told.len(),
                map.version
            );
            Ok(out)
        }
    }
}

/// The stored map, as text.
pub fn show(map: &ShardMap) -> String {
    let mut out = format!(
        "map {}: strategy {}, {} slots, {} shards, tables {}\n",
        map.version,
        map.routing.strategy,
        map.slot_count(),
        map.shards.len(),
        map.tables.join(", ")
    );
    for s in &map.shards {
        let slots = control_plane::map::assign::describe(
            map.ranges_of(s.id).iter().flat_map(|(a, b)| *a..=*b),
        );
        out += &format!(
            "{}: primary {}, replicas [{}], {} slot(s){}\n",
            s.id,
            s.primary,
            s.replicas.join(", "),
            map.slots_of(s.id).len(),
            if map.owners.is_empty() {
                String::new()
            } else {
                format!(": {slots}")
            }
        );
    }
    out
}

/// The servers and router a command that writes straight into the shards (`seed`)
/// uses: the stored map's (shards added since the configuration was written
/// included) when the metadata database answers, else the configuration's, with a note.
pub fn placement(
    settings: &ClusterSettings,
    config: Router,
) -> (ClusterSettings, Router, Option<String>) {
    let loaded = runtime().and_then(|rt| rt.block_on(change::current(settings)));
    match loaded.and_then(|map| {
        Ok((
            map.router().map_err(|e| MapError::Corrupt(e.to_string()))?,
            map,
        ))
    }) {
        Ok((router, map)) => (map.settings_over(settings), router, None),
        Err(e) => (
            settings.clone(),
            config,
            Some(format!("placing with the configuration's map: {e}")),
        ),
    }
}

/// The router admin commands place keys with: the stored map when the metadata
/// database answers, else the configuration's (and a note saying so).
pub fn router_for(settings: &ClusterSettings, config: Router) -> (Router, Option<String>) {
    let loaded = runtime().and_then(|rt| rt.block_on(change::current(settings)));
    match loaded.and_then(|map| map.router().map_err(|e| MapError::Corrupt(e.to_string()))) {
        Ok(router) if router.shard_count() == config.shard_count() => (router, None),
        Ok(router) => {
            let note = format!(
                "the stored map {} has {} shards but the configuration {}: placing with the configuration",
                router.version(),
                router.shard_count(),
                config.shard_count()
            );
            (config, Some(note))
        }
        Err(e) => (
            config,
            Some(format!("placing with the configuration's map: {e}")),
        ),
    }
}
