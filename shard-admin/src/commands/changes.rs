//! `shard-admin changes tail --table T`: a table's change stream from the command line,
//! as `GET /api/changes` serves it and through the same library call
//! (`Cluster::changes_waiting`): each change one JSON line on standard output with the
//! `cursor` that resumes right after it (`--after`), each `resolved` checkpoint a line on
//! standard error. It follows the stream until interrupted, or until `--count` changes,
//! or, with `--until-caught-up`, until a page finds nothing new.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use control_plane::txn::{MetaFence, MetaLog};
use serde_json::json;
use shard_manager::changes::{ChangeCursor, ChangesError};
use shard_manager::config::ClusterSettings;
use shard_manager::store::Tables;

use super::stored_map;
use crate::audit::{Judged, Outcome};

/// The `changes` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ChangesCommand {
    /// Follow a table's changes: one JSON line per change (with its resume `cursor`).
    Tail(TailArgs),
}

/// `changes tail`: which table, from where, until when.
#[derive(Debug, clap::Args)]
pub struct TailArgs {
    /// The table (one of `tables.allowed`).
    #[arg(long)]
    pub table: String,
    /// Resume after this cursor (a line's `cursor`, an API page's `next` or an event's
    /// `id`); absent: from the oldest change kept.
    #[arg(long, conflicts_with = "from_snapshot")]
    pub after: Option<String>,
    /// Start with every record of the table as it was at one cut (operation
    /// `snapshot`), then the changes after it.
    #[arg(long)]
    pub from_snapshot: bool,
    /// Stop after this many changes.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop at the first page that finds nothing new (print the cursor to resume from
    /// on standard error).
    #[arg(long)]
    pub until_caught_up: bool,
    /// Changes read a page at a time, 1 to `changes.max_page`.
    #[arg(long, default_value_t = 500)]
    pub limit: usize,
}

/// Why `changes tail` stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ChangesCommandError {
    /// A bad argument: nothing was read.
    #[error("{0}")]
    Refused(String),
    #[error("cannot start a runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the cluster configuration is invalid: {0}")]
    Config(#[from] shard_manager::ConfigError),
    #[error(transparent)]
    Changes(#[from] ChangesError),
    #[error("writing the changes: {0}")]
    Write(#[source] std::io::Error),
}

impl Judged for ChangesCommandError {
    fn outcome(&self) -> Outcome {
        match self {
            Self::Refused(_) | Self::Config(_) | Self::Changes(ChangesError::Gone { .. }) => {
                Outcome::Refused
            }
            Self::Runtime(_) | Self::Changes(_) | Self::Write(_) => Outcome::Failed,
        }
    }
}

/// Runs `changes`, writing changes to `out` and checkpoints to `log`.
pub fn run(
    settings: &ClusterSettings,
    command: ChangesCommand,
    out: &mut dyn Write,
    log: &mut dyn Write,
) -> Result<(), ChangesCommandError> {
    let ChangesCommand::Tail(args) = command;
    let table = Tables::new(settings.tables.allowed.clone())
        .parse(&args.table)
        .map_err(|e| ChangesCommandError::Refused(e.to_string()))?;
    let max_page = settings.changes.max_page.max(1);
    if !(1..=max_page).contains(&args.limit) {
        return Err(ChangesCommandError::Refused(format!(
            "--limit {}: use 1 to {max_page} (changes.max_page)",
            args.limit
        )));
    }
    let mut cursor = match args.after.as_deref() {
        None => ChangeCursor::default(),
        Some(text) => ChangeCursor::decode(text.trim()).map_err(|why| {
            ChangesCommandError::Refused(format!(
                "--after is not a change cursor ({why}); pass a `cursor` as it was printed"
            ))
        })?,
    };
    let wait = Duration::from_millis(settings.changes.max_wait_ms.min(5_000));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ChangesCommandError::Runtime)?;
    // The wire client's connections run as local tasks, as on a gateway's workers.
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let cluster = stored_map::cluster(settings).await?;
        // A page is read at a cut across shards: the fence, and the decision log whose
        // decided parts a cut may have to finish, as a gateway has them (the bound is a
        // coordinator's, which this command never is).
        cluster.set_decision_log(Arc::new(MetaLog::new(settings.clone())), Duration::ZERO);
        let session = uuid::Uuid::new_v4();
        cluster.set_cut_fence(Arc::new(MetaFence::new(settings.clone(), &session)));
        let mut printed = 0u64;
        let mut first = args.from_snapshot;
        let result = loop {
            let page = match first {
                true => cluster.snapshot_page(&table, None, args.limit, None).await,
                false => {
                    let wait = if args.until_caught_up {
                        Duration::ZERO
                    } else {
                        wait
                    };
                    cluster
                        .changes_waiting(&table, &cursor, args.limit, wait, None)
                        .await
                }
            };
            first = false;
            let page = match page {
                Ok(page) => page,
                Err(e) => break Err(e.into()),
            };
            let caught_up = page.changes.is_empty() && page.next.snapshot.is_none();
            let mut written = Ok(());
            for change in &page.changes {
                let mut line = serde_json::to_value(change).unwrap_or_default();
                if !change.cursor.is_empty() {
                    line["cursor"] = json!(change.cursor);
                }
                written = writeln!(out, "{line}");
                printed += 1;
                if written.is_err() || args.count.is_some_and(|n| printed >= n) {
                    break;
                }
            }
            if let Err(e) = written.and_then(|()| out.flush()) {
                break Err(ChangesCommandError::Write(e));
            }
            cursor = page.next;
            if args.count.is_some_and(|n| printed >= n) {
                break Ok(());
            }
            if let Some(at) = page.resolved {
                let _ = writeln!(
                    log,
                    "resolved {}: resume with --after {}",
                    at.to_rfc3339(),
                    cursor.encode()
                );
            }
            if caught_up && args.until_caught_up {
                let _ = writeln!(log, "caught up: resume with --after {}", cursor.encode());
                break Ok(());
            }
        };
        cluster.close();
        result
    })
}
