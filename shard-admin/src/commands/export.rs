//! `shard-admin export`: one table of every shard written to a file, as NDJSON or
//! CSV, the same records in the same form as `GET /api/export` (see
//! `shard_manager::export`). The file appears whole or not at all: records go to a
//! temporary file beside it, renamed over `--out` once the last shard is read and the
//! data is on disk. A refused command (a bad argument) creates nothing; an export that
//! stops part-way (a shard failing, a slot moving) removes its temporary file.
//!
//! CSV is safe to open in a spreadsheet unless `--raw` is given: a cell that starts
//! like a formula gets a leading `'` (see `shard_manager::export::format`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use shard_manager::config::ClusterSettings;
use shard_manager::export::{Export, ExportError, ExportSpec, Format};
use shard_manager::store::Tables;
use shard_manager::ShardKey;

use crate::audit::{Judged, Outcome};
use crate::tools::plan::report::thousands;
use crate::tools::progress::counter_bar;

/// `export`: which table, in which format, to which file.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The table to export (one of `tables.allowed`).
    #[arg(long)]
    pub table: String,
    /// `ndjson` (one JSON object per record) or `csv` (a header row, RFC 4180). In CSV,
    /// a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
    /// leading `'`, so a spreadsheet shows it instead of running it as a formula (see
    /// `--raw`).
    #[arg(long, default_value = "ndjson")]
    pub format: String,
    /// CSV only: write every cell as stored, without the leading `'` that keeps a
    /// spreadsheet from running a cell as a formula; for programs that read the file.
    /// NDJSON is the same either way (JSON is not run by spreadsheets).
    #[arg(long)]
    pub raw: bool,
    /// The file to write (replaced atomically when the export completes).
    #[arg(long)]
    pub out: PathBuf,
    /// Only records whose shard key starts with this.
    #[arg(long)]
    pub key_prefix: Option<String>,
    /// Records per page read from a shard, 1 to 10000.
    #[arg(long, default_value_t = 1000)]
    pub page_rows: u32,
}

/// Why `export` did not write its file.
#[derive(Debug, thiserror::Error)]
pub enum ExportCommandError {
    /// A bad argument: nothing was read or written.
    #[error("{0}")]
    Refused(String),
    #[error("cannot start a runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the cluster configuration is invalid: {0}")]
    Config(#[from] shard_manager::ConfigError),
    /// The export stopped; the temporary file was removed and `--out` left as it was.
    #[error("the export stopped ({0}); {1} was not written")]
    Stopped(#[source] ExportError, String),
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Judged for ExportCommandError {
    fn outcome(&self) -> Outcome {
        match self {
            Self::Refused(_) | Self::Config(_) => Outcome::Refused,
            Self::Runtime(_) | Self::Stopped(..) | Self::Write { .. } => Outcome::Failed,
        }
    }
}

/// Runs the export; the summary line.
pub fn export(settings: &ClusterSettings, args: ExportArgs) -> Result<String, ExportCommandError> {
    let format = Format::parse(&args.format).ok_or_else(|| {
        ExportCommandError::Refused(format!("--format {:?}: use ndjson or csv", args.format))
    })?;
    let format = match args.raw {
        true => format.raw(),
        false => format,
    };
    let table = Tables::new(settings.tables.allowed.clone())
        .parse(&args.table)
        .map_err(|e| ExportCommandError::Refused(e.to_string()))?;
    let key_prefix = match &args.key_prefix {
        None => String::new(),
        Some(p) => ShardKey::parse(p)
            .map(|_| p.clone())
            .map_err(|e| ExportCommandError::Refused(format!("--key-prefix: {e}")))?,
    };
    if !(1..=10_000).contains(&args.page_rows) {
        return Err(ExportCommandError::Refused(format!(
            "--page-rows {}: use 1 to 10000",
            args.page_rows
        )));
    }
    let temp = temp_path(&args.out)?;
    let spec = ExportSpec {
        table,
        key_prefix,
        page_rows: args.page_rows,
        page_bytes: 1 << 20,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ExportCommandError::Runtime)?;
    let started = Instant::now();
    let out = args.out.display().to_string();
    let written = rt.block_on(async {
        let cluster = Arc::new(super::stored_map::cluster(settings).await?);
        let export = Export::start(cluster.clone(), spec)
            .await
            .map_err(|e| ExportCommandError::Stopped(e, out.clone()))?;
        let version = export.map_version();
        let result = write_file(export, format, &temp, &out).await;
        cluster.close();
        result.map(|n| (n, version))
    });
    let (records, version) = match written {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
    std::fs::rename(&temp, &args.out).map_err(|source| {
        let _ = std::fs::remove_file(&temp);
        ExportCommandError::Write {
            path: out.clone(),
            source,
        }
    })?;
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename itself on disk (best effort: not every platform opens a directory).
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(format!(
        "exported {} records of table {} (map {version}) to {out} as {} in {secs:.1} s ({} records/s)\n",
        thousands(records),
        args.table,
        args.format,
        thousands((records as f64 / secs.max(0.001)) as u64),
    ))
}

/// A temporary file beside `out` (same directory, so the rename is atomic). Refuses an
/// `--out` that is a directory or in a directory that does not exist.
fn temp_path(out: &Path) -> Result<PathBuf, ExportCommandError> {
    let refuse = |why: &str| ExportCommandError::Refused(format!("--out {}: {why}", out.display()));
    if out.is_dir() {
        return Err(refuse("is a directory"));
    }
    let name = out.file_name().ok_or_else(|| refuse("names no file"))?;
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(refuse("its directory does not exist"));
    }
    let mut temp = name.to_os_string();
    temp.push(format!(".export-{}.tmp", std::process::id()));
    Ok(dir.join(temp))
}

/// Writes every page to `temp`, flushed and synced; the number of records.
async fn write_file(
    mut export: Export,
    format: Format,
    temp: &Path,
    out: &str,
) -> Result<u64, ExportCommandError> {
    let fail = |source| ExportCommandError::Write {
        path: temp.display().to_string(),
        source,
    };
    let file = File::create(temp).map_err(fail)?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    writer.write_all(format.header().as_bytes()).map_err(fail)?;
    let bar = counter_bar("export");
    let mut records = 0u64;
    let mut line = Vec::new();
    loop {
        let page = match export.next_page().await {
            Ok(Some(page)) => page,
            Ok(None) => break,
            Err(e) => {
                bar.abandon();
                return Err(ExportCommandError::Stopped(e, out.to_owned()));
            }
        };
        line.clear();
        for record in &page.records {
            format.write(record, &mut line);
        }
        writer.write_all(&line).map_err(fail)?;
        records += page.records.len() as u64;
        bar.inc(page.records.len() as u64);
    }
    bar.finish_and_clear();
    let file = writer.into_inner().map_err(|e| fail(e.into_error()))?;
    file.sync_all().map_err(fail)?;
    Ok(records)
}
