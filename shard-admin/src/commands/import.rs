//! `shard-admin import` and `shard-admin imports ...`: a table of an existing,
//! unsharded PostgreSQL database copied into Shardgate while it keeps taking writes,
//! then cut over. A run draws a progress bar (rows copied, rows/s, ETA, changes
//! behind) on a terminal and ends with a summary; a refused command changed nothing
//! and says why; a run that stopped says how to go on.

use std::time::Instant;

use crate::audit::Named;
use crate::commands::moves::runtime;
use crate::tools::plan::report::thousands;
use control_plane::import::abort;
use control_plane::import::runner::{self, Request};
use control_plane::import::source::redact;
use control_plane::import::{Import, ImportError, Imports, Phase};
use shard_manager::config::ClusterSettings;

/// `import`: what to copy, into which table, and whether to cut over.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The source database, a PostgreSQL connection string (or set
    /// SHARDGATE_IMPORT_SOURCE, which keeps its password out of the shell history).
    #[arg(long, env = "SHARDGATE_IMPORT_SOURCE", hide_env_values = true)]
    pub source: String,
    /// The source table: `name` or `schema.name` (quote mixed case: '"Orders"').
    #[arg(long)]
    pub table: String,
    /// The column whose value becomes each record's shard key.
    #[arg(long)]
    pub key_column: String,
    /// The column whose value becomes each record's id ((key, id) names one row).
    #[arg(long)]
    pub id_column: String,
    /// The Shardgate table the rows become records of (default: the source table's name).
    #[arg(long)]
    pub into: Option<String>,
    /// Rows per page copied, and changes per replay batch.
    #[arg(long, default_value_t = 5_000)]
    pub batch: i64,
    /// Once in sync, cut over: writers wait a moment, the last changes are replayed,
    /// both sides are compared, and the source table is frozen (it refuses writes).
    #[arg(long)]
    pub cutover: bool,
}

impl ImportArgs {
    /// What the audit line names: the source (without its password), the table filled,
    /// the options.
    pub fn named(&self) -> Named {
        Named {
            database: Some(redact(&self.source).unwrap_or_else(|_| "(unparsable --source)".into())),
            table: Some(
                self.into
                    .clone()
                    .unwrap_or_else(|| default_into(&self.table)),
            ),
            options: Some(format!(
                "--table {} --key-column {} --id-column {}{}",
                self.table,
                self.key_column,
                self.id_column,
                if self.cutover { " --cutover" } else { "" }
            )),
            ..Named::default()
        }
    }
}

/// The Shardgate table an import fills without `--into`: the source table's name.
fn default_into(table: &str) -> String {
    table
        .rsplit('.')
        .next()
        .unwrap_or(table)
        .trim_matches('"')
        .to_owned()
}

/// The `imports` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ImportsCommand {
    /// Active imports and the newest finished ones: phase, rows, changes behind, ETA.
    Status {
        /// One import only.
        id: Option<i64>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Roll back an import that has not cut over: the source's capture is removed and
    /// the records it wrote are deleted.
    Abort {
        id: i64,
        /// The source database, as given to `import`.
        #[arg(long, env = "SHARDGATE_IMPORT_SOURCE", hide_env_values = true)]
        source: String,
    },
}

impl ImportsCommand {
    /// The audit line's action and what it names; `None` for `status`.
    pub fn audited(&self) -> Option<(&'static str, Named)> {
        match self {
            Self::Status { .. } => None,
            Self::Abort { id, source } => Some((
                "imports abort",
                Named {
                    database: Some(
                        redact(source).unwrap_or_else(|_| "(unparsable --source)".into()),
                    ),
                    options: Some(format!("import {id}")),
                    ..Named::default()
                },
            )),
        }
    }
}

/// `import`: runs (or resumes) the import as far as asked; the summary.
pub fn import(settings: &ClusterSettings, args: ImportArgs) -> Result<String, ImportError> {
    let into = args.into.unwrap_or_else(|| default_into(&args.table));
    let request = Request {
        source: args.source,
        table: args.table,
        key_column: args.key_column,
        id_column: args.id_column,
        into,
        batch: args.batch,
        cutover: args.cutover,
    };
    let rt = runtime()?;
    let started = Instant::now();
    let bar = crate::tools::progress::phase_bar();
    let mut phase = None;
    let mut copied_before = None;
    let mut progress = |im: &Import| {
        copied_before.get_or_insert(im.rows_copied);
        if phase != Some(im.phase) {
            phase = Some(im.phase);
            bar.suspend(|| eprintln!("import {}: {}", im.id, im.phase.as_str()));
            bar.set_prefix(im.phase.as_str());
        }
        bar.set_length(im.rows_total.max(im.rows_copied).max(0) as u64);
        bar.set_position(im.rows_copied.max(0) as u64);
        bar.set_message(format!("behind {}", im.rows_behind));
    };
    let done = rt.block_on(runner::run(settings, &request, &mut progress));
    bar.finish_and_clear();
    let copied_here = copied_before.map_or(0, |before| {
        done.as_ref()
            .map_or(0, |im| (im.rows_copied - before).max(0))
    });
    let im = done.map_err(|e| match e {
        ImportError::Refused(_) => e,
        e => ImportError::Stopped(format!(
            "the import stopped: {e}; `shard-admin imports status` shows where it is, the same command continues it"
        )),
    })?;
    Ok(summary(&im, copied_here, started.elapsed().as_secs_f64()))
}

/// Runs one `imports` subcommand; returns what to print.
pub fn run(settings: &ClusterSettings, command: ImportsCommand) -> Result<String, ImportError> {
    let rt = runtime()?;
    match command {
        ImportsCommand::Status { id, json } => {
            let imports = rt.block_on(async {
                let mut conn = control_plane::map::meta::connect(settings).await?;
                control_plane::map::schema::apply(&mut conn.client).await?;
                let imports = Imports::new(&conn.client);
                Ok::<_, ImportError>(match id {
                    Some(id) => vec![imports.get(id).await?],
                    None => imports.list(10).await?,
                })
            })?;
            if json {
                let shown: Vec<Shown> = imports.iter().map(Shown::new).collect();
                return Ok(serde_json::to_string_pretty(&shown).unwrap_or_default() + "\n");
            }
            Ok(status(&imports))
        }
        ImportsCommand::Abort { id, source } => {
            let im = rt.block_on(abort::abort(settings, id, &source))?;
            Ok(format!("import {}: {}\n", im.id, im.note))
        }
    }
}

/// The end of a run; `copied_here`: rows this run copied (its rate is theirs).
fn summary(im: &Import, copied_here: i64, secs: f64) -> String {
    let rate = match copied_here {
        0 => "none copied by this run".to_owned(),
        n => format!("{} rows/s", thousands((n as f64 / secs.max(0.001)) as u64)),
    };
    match im.phase {
        Phase::Done => format!(
            "import {} done in {secs:.1} s: {} -> {} ({} rows copied, {rate}; {} changes replayed); the source's writers waited {} ms at the cut-over, and its table now refuses writes\n",
            im.id,
            im.detail.source_table,
            im.detail.into,
            thousands(im.rows_copied as u64),
            thousands(im.rows_replayed as u64),
            im.fence_ms.map_or("?".into(), |ms| ms.to_string()),
        ),
        Phase::Syncing => format!(
            "import {} in sync in {secs:.1} s: {} -> {} ({} rows copied, {rate}; {} changes replayed, {} behind); the source still takes writes: run the same command again to catch up, with --cutover to switch\n",
            im.id,
            im.detail.source_table,
            im.detail.into,
            thousands(im.rows_copied as u64),
            thousands(im.rows_replayed as u64),
            thousands(im.rows_behind as u64),
        ),
        _ => format!("import {}: {} ({})\n", im.id, im.phase.as_str(), im.note),
    }
}

/// The imports as a table, then one line of advice per active import.
pub fn status(imports: &[Import]) -> String {
    if imports.is_empty() {
        return "no imports recorded\n".into();
    }
    let mut out = format!(
        "{:<6} {:<13} {:<24} {:<10} {:>17} {:>8} {:>7} {:>7}\n",
        "IMPORT", "PHASE", "FROM", "INTO", "COPIED", "BEHIND", "ETA", "FENCE"
    );
    for im in imports {
        out += &format!(
            "{:<6} {:<13} {:<24} {:<10} {:>17} {:>8} {:>7} {:>7}\n",
            im.id,
            im.phase.as_str(),
            im.detail.source_table,
            im.detail.into,
            format!(
                "{}/{}",
                thousands(im.rows_copied as u64),
                thousands(im.rows_total as u64)
            ),
            thousands(im.rows_behind as u64),
            im.eta_secs().map_or("-".into(), |s| format!("{s:.0}s")),
            im.fence_ms.map_or("-".into(), |ms| format!("{ms}ms")),
        );
    }
    for im in imports.iter().filter(|im| im.phase.active()) {
        out += &format!("import {} ({}): {}", im.id, im.detail.source, im.advice());
        if !im.note.is_empty() {
            out += &format!(" (last: {})", im.note);
        }
        out += "\n";
    }
    out
}

/// An import as `imports status --json` prints it: its record's columns.
#[derive(serde::Serialize)]
struct Shown<'a> {
    id: i64,
    source: &'a str,
    source_table: &'a str,
    key_column: &'a str,
    id_column: &'a str,
    into: &'a str,
    phase: &'static str,
    checkpoint: Option<&'a (String, String)>,
    rows_total: i64,
    rows_copied: i64,
    rows_replayed: i64,
    rows_behind: i64,
    fence_ms: Option<i64>,
    note: &'a str,
    actor: &'a str,
    age_secs: f64,
    idle_secs: f64,
    running: bool,
}

impl<'a> Shown<'a> {
    fn new(im: &'a Import) -> Self {
        let d = &im.detail;
        Self {
            id: im.id,
            source: &d.source,
            source_table: &d.source_table,
            key_column: &d.key_column,
            id_column: &d.id_column,
            into: &d.into,
            phase: im.phase.as_str(),
            checkpoint: d.checkpoint.as_ref(),
            rows_total: im.rows_total,
            rows_copied: im.rows_copied,
            rows_replayed: im.rows_replayed,
            rows_behind: im.rows_behind,
            fence_ms: im.fence_ms,
            note: &im.note,
            actor: &im.actor,
            age_secs: im.age_secs,
            idle_secs: im.idle_secs,
            running: im.running,
        }
    }
}
