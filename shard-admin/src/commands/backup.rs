//! `shard-manager backup [--type full|diff|incr]` and `backups list [--json]`: every
//! server backed up with pgBackRest, then a cluster restore point named on each and
//! recorded (see `control_plane::backup`). A refusal (a slot move or import active,
//! another backup running) or a failure (pgbackrest missing, a stanza missing, a server
//! down) names its cause, exits non-zero and records no point.

use chrono::{DateTime, Utc};
use control_plane::backup::{self, BackupError, BackupKind, Listing};
use shard_manager::config::ClusterSettings;

/// `backup`: which kind of pgBackRest backup.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// full: every file; diff: changes since the last full; incr: changes since the
    /// last backup (a stanza's first backup is full whatever is asked).
    #[arg(long = "type", value_enum, default_value = "incr")]
    pub kind: BackupKind,
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

/// Runs `backup`, saying each step on stderr; the summary to print.
pub fn backup(settings: &ClusterSettings, args: BackupArgs) -> Result<String, BackupError> {
    let taken = runtime()?.block_on(backup::take(settings, args.kind, |step| {
        eprintln!("backup: {step}")
    }))?;
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
        out += "  (none: run `shard-manager backup`)\n";
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
        assert!(
            text.contains("(none: run `shard-manager backup`)"),
            "{text}"
        );
    }
}
