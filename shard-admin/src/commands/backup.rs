//! `shard-admin backup [--type full|diff|incr]` and `backups list [--json]`: every
//! server backed up with pgBackRest, then a cluster restore point named on each and
//! recorded (see `control_plane::backup`); `restore --point NAME [--yes]`: every server
//! back to a point (the plan alone without `--yes`). A refusal (a slot move or import active,
//! another backup running) or a failure (pgbackrest missing, a stanza missing, a server
//! down) names its cause, exits non-zero and records no point.

use chrono::{DateTime, Utc};
use control_plane::backup::{self, BackupError, BackupKind, Listing, Plan, Progress, Restored};

use crate::tools::progress::backup_bar;
use shard_manager::config::ClusterSettings;

/// `backup`: which kind of pgBackRest backup.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// full: every file; diff: changes since the last full; incr: changes since the
    /// last backup (a stanza's first backup is full whatever is asked).
    #[arg(long = "type", value_enum, default_value = "incr")]
    pub kind: BackupKind,
}

/// `restore`: which point, and whether to act.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The restore point's name (`shard-admin backups list` shows them).
    #[arg(long)]
    pub point: String,
    /// Restore. Without it the plan is printed and nothing changes.
    #[arg(long)]
    pub yes: bool,
    /// Restore even when the metadata database does not answer, so that live gateways
    /// and active moves or imports cannot be checked (refused without it).
    #[arg(long)]
    pub force: bool,
}

/// `backups ...`.
#[derive(Debug, clap::Subcommand)]
pub enum BackupsCommand {
    /// The recorded restore points and every stanza's pgBackRest backups.
    List {
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime, BackupError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| BackupError::Refused(format!("cannot start a runtime: {e}")))
}

/// Runs `backup`, saying each step on stderr, with a progress bar over every stanza's
/// copy on a terminal; the summary to print.
pub fn backup(settings: &ClusterSettings, args: BackupArgs) -> Result<String, BackupError> {
    // The point is named on each shard's primary as the map names it: a promotion no
    // gateway saw (pg_auto_failover's, say) is followed first, as `migrate` does.
    for line in super::map::follow_promotions(settings) {
        eprintln!("backup: {line}");
    }
    let bar = backup_bar();
    let taken = runtime()?.block_on(backup::take(settings, args.kind, |p| match p {
        Progress::Step(step) => bar.suspend(|| eprintln!("backup: {step}")),
        Progress::Copying {
            stanza,
            index,
            of,
            percent,
        } => {
            bar.set_length(of as u64 * 100);
            bar.set_position(index as u64 * 100 + percent.round() as u64);
            bar.set_message(format!(
                "stanza {stanza} ({} of {of}) {percent:.0}%",
                index + 1
            ));
        }
    }));
    bar.finish_and_clear();
    let taken = taken?;
    let mut out = String::new();
    for (stanza, address, took) in &taken.stanzas {
        out += &format!(
            "stanza {stanza} ({address}): {} backup in {:.1} s\n",
            taken.kind.as_str(),
            took.as_secs_f64()
        );
    }
    let p = &taken.point;
    out += &format!(
        "restore point {} recorded: map {}, fence {} ms, {}\n",
        p.name,
        p.map_version,
        p.fence_ms,
        p.servers
            .iter()
            .map(|s| format!("{} at {}", s.stanza, s.lsn))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(out)
}

/// Runs `restore`: the plan alone, or (`--yes`) the restore, saying each step on
/// stderr; the text to print.
pub fn restore(settings: &ClusterSettings, args: RestoreArgs) -> Result<String, BackupError> {
    let rt = runtime()?;
    let plan = rt.block_on(backup::plan_restore(settings, &args.point, args.force))?;
    if !args.yes {
        return Ok(render_plan(&plan)
            + "nothing was changed: run again with --yes to restore (this loses every write made after the point)\n");
    }
    let point = plan.point.clone();
    let done = rt
        .block_on(backup::restore(settings, &plan, |step| {
            eprintln!("restore: {step}")
        }))
        .map_err(|e| match e {
            BackupError::RestoreStep { server, step, reason } => BackupError::RestoreStep {
                server,
                step,
                reason: format!(
                    "{reason}; the servers are left stopped or restored: once the cause is fixed, `shard-admin restore --point {point} --yes` again resumes (pgBackRest's delta restore)"
                ),
            },
            e => e,
        })?;
    Ok(render_restored(&plan, &done))
}

/// The plan: the point, every stanza and its data directory, the replicas.
pub fn render_plan(plan: &Plan) -> String {
    let mut out = format!(
        "restore point {} taken {}{}\n",
        plan.point,
        plan.at.format("%Y-%m-%d %H:%M:%S UTC"),
        plan.map_version
            .map_or(String::new(), |v| format!(", map version {v}"))
    );
    for note in &plan.notes {
        out += &format!("note: {note}\n");
    }
    out += match plan.ha {
        true => "servers to restore (each formation's first node: stopped, restored with pgbackrest --delta, started, promoted at the point):\n",
        false => "servers to restore (each stopped, restored with pgbackrest --delta, started, promoted at the point):\n",
    };
    for s in &plan.stanzas {
        out += &format!(
            "  stanza {:<8} {:<21} from backup {:<24} into {}\n",
            s.target.stanza, s.target.address, s.set, s.data_dir
        );
    }
    if plan.replicas.is_empty() {
        out += "replicas: none listed\n";
    } else {
        out += match plan.ha {
            true => "the formations' other nodes (stopped if running, never started: they hold data from after the point or another timeline):\n",
            false => "replicas (stopped: they hold data from after the point and cannot follow the restored primary):\n",
        };
        for r in &plan.replicas {
            out += &format!(
                "  {:<8} {:<21} {}\n",
                r.shard,
                r.address,
                r.data_dir.as_deref().unwrap_or("(not running)")
            );
        }
    }
    if plan.ha {
        out += HA_NEXT;
    }
    out
}

/// Under an HA manager, what follows a restore.
const HA_NEXT: &str = "then `./setup.sh up`: it re-forms each formation around its restored first node (the monitor forgets the old nodes, the others are cloned again from it); gateways may start after that\n";

/// What the restore did.
pub fn render_restored(plan: &Plan, done: &Restored) -> String {
    let mut out = String::new();
    for note in &plan.notes {
        out += &format!("note: {note}\n");
    }
    for (s, restore, recovery) in &done.stanzas {
        out += &format!(
            "stanza {} ({}): pgbackrest restore {:.1} s; started, at the point and promoted {:.1} s later\n",
            s.target.stanza,
            s.target.address,
            restore.as_secs_f64(),
            recovery.as_secs_f64()
        );
    }
    out += &format!(
        "cluster restored to {} in {:.1} s; map version {}\n",
        plan.point,
        done.took.as_secs_f64(),
        done.map_version
    );
    for line in &done.followed {
        out += &format!("map: {line}\n");
    }
    let d = &done.in_doubt;
    out += &format!(
        "prepared at the point: {} part(s) of {} transaction(s) across shards; {} committed (decided before the point), {} rolled back (undecided at the point)\n",
        d.committed + d.rolled_back,
        d.transactions,
        d.committed,
        d.rolled_back
    );
    for s in &done.shards {
        out += &format!(
            "{}: cache epoch {} -> {} (older epochs retired: {})\n",
            s.shard, s.epoch_before, s.epoch_now, s.caches
        );
    }
    for s in &done.shards {
        out += &format!("map check: {}\n", s.ownership);
    }
    if plan.ha {
        if !done.stopped_replicas.is_empty() {
            let names: Vec<&str> = done
                .stopped_replicas
                .iter()
                .map(|r| r.address.as_str())
                .collect();
            out += &format!("other nodes stopped: {}\n", names.join(", "));
        }
        return out + HA_NEXT;
    }
    if !done.stopped_replicas.is_empty() {
        let names: Vec<String> = done
            .stopped_replicas
            .iter()
            .map(|r| format!("{} of {}", r.address, r.shard))
            .collect();
        out += &format!("replicas stopped: {}\n", names.join(", "));
        out += match done.new_incarnation {
            true => "rebuild them with `./setup.sh up` (each restored primary has a new incarnation: it clones each replica again)\n",
            false => "rebuild each from its restored primary: pg_basebackup -R -X stream into its data directory, then start it\n",
        };
    }
    out += "gateways may start now: they serve the cluster as it was at the point\n";
    out
}

/// Runs `backups ...`; the text to print.
pub fn run(settings: &ClusterSettings, command: BackupsCommand) -> Result<String, BackupError> {
    match command {
        BackupsCommand::List { json } => {
            let listing = runtime()?.block_on(backup::list(settings))?;
            Ok(match json {
                true => {
                    serde_json::to_string_pretty(&listing).expect("a listing serialises") + "\n"
                }
                false => render(&listing),
            })
        }
    }
}

/// The listing as two text tables.
pub fn render(listing: &Listing) -> String {
    let mut out = String::from("restore points\n");
    if listing.points.is_empty() {
        out += "  (none: run `shard-admin backup`)\n";
    } else {
        out += &format!(
            "  {:<22} {:<20} {:>5} {:>8} {:<5} servers\n",
            "name", "time (UTC)", "map", "fence ms", "type"
        );
        for l in &listing.points {
            let p = &l.point;
            out += &format!(
                "  {:<22} {:<20} {:>5} {:>8} {:<5} {}\n",
                p.name,
                p.at.format("%Y-%m-%d %H:%M:%S"),
                p.map_version,
                p.fence_ms,
                l.backup_type,
                p.servers
                    .iter()
                    .map(|s| format!("{}@{}", s.stanza, s.lsn))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    }
    out += "\npgBackRest backups\n";
    out += &format!(
        "  {:<8} {:<34} {:<5} {:<20} {:>6} {:>10} {:>10}\n",
        "stanza", "label", "type", "started (UTC)", "secs", "size", "repo"
    );
    for st in &listing.stanzas {
        if st.backups.is_empty() {
            out += &format!("  {:<8} (no backup; {})\n", st.stanza, st.status);
        }
        for b in &st.backups {
            out += &format!(
                "  {:<8} {:<34} {:<5} {:<20} {:>6} {:>10} {:>10}\n",
                st.stanza,
                b.label,
                b.kind,
                time(b.started),
                b.stopped - b.started,
                size(b.size_bytes),
                size(b.repo_bytes)
            );
        }
    }
    out
}

fn time(unix: i64) -> String {
    DateTime::<Utc>::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_read_them() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(3 * 1024 * 1024 + 512 * 1024), "3.5 MiB");
        assert_eq!(size(2 << 30), "2.0 GiB");
    }

    #[test]
    fn an_empty_listing_says_how_to_get_a_point() {
        let text = render(&Listing {
            points: vec![],
            stanzas: vec![],
        });
        assert!(text.contains("(none: run `shard-admin backup`)"), "{text}");
    }
}
