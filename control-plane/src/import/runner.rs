//! The phases in order. `run` records an import after its checks (or finds the active
//! one into the same table) and takes it as far as asked: copied and in sync, or cut
//! over. The same call resumes an import whose process died, and a run whose shard
//! failed over resumes itself.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::replay::SourceLog;
use super::retry::{Mark, Patience, SHARD_PATIENCE};
use super::shards::Writer;
use super::source::Source;
use super::spec::SourceTable;
use super::state::{Import, Phase};
use super::store::{Imports, NewImport};
use super::{verify, ImportError};
use crate::jobs::replay::{catch_up, drain, CatchUp};
use crate::jobs::JobError;
use crate::map::{meta, schema};
use crate::moves::copy::throttle;
use shard_manager::config::ClusterSettings;

/// Few enough logged changes to replay under the fence.
const FENCE_BACKLOG: i64 = 500;
/// How long the fence waits for the source table's lock: writers that arrive meanwhile
/// queue behind the request, so it must stay short. (The connection's own statement
/// timeout, if its URL sets one, is lifted inside the fence: the verification reads the
/// whole table.)
const LOCK_PATIENCE_SECS: u64 = 5;
/// Catch-up passes before the command stops and says it cannot keep up.
const MAX_PASSES: usize = 10_000;

/// What to import, and how far to go.
#[derive(Debug, Clone)]
pub struct Request {
    /// A PostgreSQL connection string of the source database.
    pub source: String,
    /// `table` or `schema.table` on the source.
    pub table: String,
    pub key_column: String,
    pub id_column: String,
    /// The Shardgate table the rows become records of.
    pub into: String,
    /// Rows per page (and log entries per replay batch).
    pub batch: i64,
    /// Cut over once in sync.
    pub cutover: bool,
}

/// Test-only kill points (feature `faults`): `SHARDGATE_FAULT_KILL_IMPORTER=step`.
fn fault(step: &str) {
    shard_manager::fault::IMPORTER.reach(step);
}

pub(super) async fn open_meta(settings: &ClusterSettings) -> Result<Client, ImportError> {
    let mut conn = meta::connect(settings).await?;
    schema::apply(&mut conn.client).await?;
    Ok(conn.client)
}

/// Runs an import as far as `request` asks; `progress` is called after each step. A
/// shard that stops answering (a failover) is waited for, up to about half a minute
/// without progress ([`super::retry`]): each try reads the map again and goes on from
/// the import's stored state, against the primary the map names then.
pub async fn run(
    settings: &ClusterSettings,
    request: &Request,
    progress: &mut (dyn FnMut(&Import) + Send),
) -> Result<Import, ImportError> {
    if request.batch < 1 || request.batch > 50_000 {
        return Err(ImportError::Refused(format!(
            "--batch {} is out of range: 1 to 50000",
            request.batch
        )));
    }
    let client = open_meta(settings).await?;
    let source = Source::connect(&request.source).await?;
    let t = source
        .resolve(&request.table, &request.key_column, &request.id_column)
        .await?;
    let mut writer = Writer::open(settings, &request.into).await?;
    let imports = Imports::new(&client);
    let id = match imports.active_into(&request.into).await? {
        Some(found) => same_import(&found, &source, &t)?,
        None => start(&imports, &source, &t, &mut writer, request).await?,
    };
    imports.claim(id).await?;
    let mut job = Job {
        imports,
        source: &source,
        t: &t,
        writer: &mut writer,
        id,
        batch: request.batch,
        settings,
        progress,
    };
    let mut patience = Patience::new(SHARD_PATIENCE);
    loop {
        let failed = match job.advance(request.cutover).await {
            Ok(im) => return Ok(im),
            Err(e) => e,
        };
        let wait = match failed.retry_after() {
            Some(wait) if patience.another_try(Mark::of(&job.imports.get(id).await?)) => wait,
            _ => {
                if patience.failures() > 0 {
                    // The last note said it was waiting: it says why it stopped now.
                    let _ = job.imports.set_note(id, &failed.to_string()).await;
                }
                return Err(failed);
            }
        };
        tracing::warn!(import_id = id, error = %failed, wait_ms = wait.as_millis() as u64, "a shard failed; trying again");
        job.imports
            .set_note(id, &format!("waiting: {failed}"))
            .await?;
        tokio::time::sleep(wait).await;
        // The next try opens the primaries the map names then (a promoted replica).
        job.writer.reconnect().await?;
    }
}

/// The active import into the same table must be this one (same source, table and
/// columns); anything else is refused.
fn same_import(found: &Import, source: &Source, t: &SourceTable) -> Result<i64, ImportError> {
    let d = &found.detail;
    let same = d.source == source.name
        && d.source_table == t.display()
        && d.key_column == t.key.name
        && d.id_column == t.id.name;
    if !same {
        return Err(ImportError::Refused(format!(
            "import {} is already filling {} (from {} {}, key {}, id {}): finish or abort it first (`shard-admin imports abort {} --source URL`)",
            found.id, d.into, d.source, d.source_table, d.key_column, d.id_column, found.id
        )));
    }
    Ok(found.id)
}

/// The checks of a new import, then its record. A refusal records nothing.
async fn start(
    imports: &Imports<'_>,
    source: &Source,
    t: &SourceTable,
    writer: &mut Writer,
    request: &Request,
) -> Result<i64, ImportError> {
    let tables = &writer.map().tables;
    if !tables.is_empty() && !tables.contains(&request.into) {
        return Err(ImportError::Refused(format!(
            "--into {:?} is not a table of the map (tables: {}); choose one of them",
            request.into,
            tables.join(", ")
        )));
    }
    let held = writer.count().await?;
    if held > 0 {
        return Err(ImportError::Refused(format!(
            "{} already holds {held} record{} in Shardgate: an import fills an empty table; choose another --into",
            request.into,
            if held == 1 { "" } else { "s" }
        )));
    }
    source.check_rows(t).await?;
    let total = source.count(t).await?;
    let created = imports
        .create(&NewImport {
            source: &source.name,
            source_table: &t.display(),
            key_column: &t.key.name,
            id_column: &t.id.name,
            into: &request.into,
            rows_total: total,
            actor: &meta::actor(),
        })
        .await;
    created.map_err(|e| match e {
        JobError::Query(q)
            if q.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
        {
            ImportError::Refused(format!(
                "another import into {} started meanwhile: `shard-admin imports status`",
                request.into
            ))
        }
        e => e.into(),
    })
}

/// One import being worked on.
struct Job<'a> {
    imports: Imports<'a>,
    source: &'a Source,
    t: &'a SourceTable,
    writer: &'a mut Writer,
    id: i64,
    batch: i64,
    settings: &'a ClusterSettings,
    progress: &'a mut (dyn FnMut(&Import) + Send),
}

impl Job<'_> {
    async fn report(&mut self) -> Result<Import, ImportError> {
        let im = self.imports.get(self.id).await?;
        (self.progress)(&im);
        Ok(im)
    }

    /// From the stored state as far as asked: copied and in sync, or cut over.
    async fn advance(&mut self, cutover: bool) -> Result<Import, ImportError> {
        let mut im = self.report().await?;
        if im.phase == Phase::Copying {
            self.copy(&im).await?;
            im = self.report().await?;
        }
        if matches!(im.phase, Phase::Syncing | Phase::CuttingOver) {
            self.catch_up().await?;
            im = self.report().await?;
        }
        if cutover && matches!(im.phase, Phase::Syncing | Phase::CuttingOver) {
            self.cut_over(im.phase).await?;
            im = self.report().await?;
        }
        Ok(im)
    }

    /// Capture first (so nothing changed from now on is missed), then the pages.
    async fn copy(&mut self, im: &Import) -> Result<(), ImportError> {
        let mut after = im.detail.checkpoint.clone();
        if !self.source.has_trigger(self.t, self.id, "").await? {
            if after.is_some() {
                // Someone removed the capture: what changed meanwhile is unknown.
                self.imports.restart_copy(self.id).await?;
                after = None;
            }
            self.source.capture(self.t, self.id).await?;
        }
        fault("captured");
        let limit = self.settings.replication.max_lag_bytes;
        loop {
            let rows = self.source.page(self.t, after.as_ref(), self.batch).await?;
            let Some(last) = rows.last() else { break };
            let next = (last.id.clone(), last.key.clone());
            self.writer.apply(&rows, &[]).await?;
            fault("page");
            let copied = rows.len() as i64;
            self.imports.copied_page(self.id, &next, copied).await?;
            after = Some(next);
            self.throttle(limit).await?;
            self.report().await?;
        }
        let syncing = self
            .imports
            .set_phase(self.id, im.phase, Phase::Syncing, "copied");
        Ok(syncing.await?)
    }

    /// Waits while a replica of a shard lags over `limit` bytes (at most 30 s a shard).
    async fn throttle(&mut self, limit: u64) -> Result<(), ImportError> {
        for conn in self.writer.connections().await? {
            throttle(conn, limit, Duration::from_secs(30)).await?;
        }
        Ok(())
    }

    /// Replays logged changes until few are left.
    async fn catch_up(&mut self) -> Result<(), ImportError> {
        let rule = CatchUp {
            batch: self.batch,
            fence_backlog: FENCE_BACKLOG,
            max_passes: MAX_PASSES,
        };
        let mut log = SourceLog {
            source: self.source,
            table: self.t,
            writer: &mut *self.writer,
            id: self.id,
        };
        if catch_up(&self.imports, self.id, &mut log, rule, &mut *self.progress).await? {
            return Ok(());
        }
        Err(ImportError::Refused(format!(
            "import {}: the source changes faster than the import replays; run it again when it is quieter",
            self.id
        )))
    }

    /// The fence: writers to the source table wait while the last changes are
    /// replayed and both sides compared; on a match the table is frozen.
    async fn cut_over(&mut self, from: Phase) -> Result<(), ImportError> {
        let (at, done_at) = (Phase::CuttingOver, Phase::Done);
        self.imports
            .set_phase(self.id, from, at, "cutting over")
            .await?;
        if self.source.has_trigger(self.t, self.id, "moved").await? {
            // Frozen by a cut-over whose process died before recording it.
            self.writer.raise_cache_epochs().await?;
            let note = "cut over (recorded by a later run: the run that froze the table died first, so its fence time is unknown)";
            return Ok(self
                .imports
                .fenced(self.id, (at, done_at), None, note)
                .await?);
        }
        let fail = self.source.fail("cutting over");
        let locked = self
            .source
            .client
            .batch_execute(&format!(
                "BEGIN; SET LOCAL lock_timeout = '{}s'; SET LOCAL statement_timeout = 0;
                 LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE;",
                LOCK_PATIENCE_SECS,
                self.t.qualified()
            ))
            .await;
        if let Err(e) = locked {
            let _ = self.source.client.batch_execute("ROLLBACK").await;
            if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
                // Writers queue behind the fence's lock request: do not hold them longer.
                let why = format!(
                    "another transaction kept writing to {} for {LOCK_PATIENCE_SECS} s, so the fence could not start (writers were not held longer); run the cut-over again",
                    self.t.display()
                );
                self.imports
                    .set_phase(self.id, at, Phase::Syncing, &why)
                    .await?;
                return Err(ImportError::Stopped(why));
            }
            return Err(fail(e));
        }
        let started = Instant::now();
        let fenced = self.fenced().await;
        let done = match fenced {
            Ok(()) => {
                fault("before-freeze-commit");
                self.source
                    .client
                    .batch_execute("COMMIT")
                    .await
                    .map_err(&fail)
            }
            Err(e) => {
                let _ = self.source.client.batch_execute("ROLLBACK").await;
                if let ImportError::Verify(why) = &e {
                    self.imports
                        .set_phase(self.id, at, Phase::Syncing, why)
                        .await?;
                }
                return Err(e);
            }
        };
        done?;
        let fence_ms = started.elapsed().as_millis() as i64;
        fault("frozen");
        let recorded = self
            .imports
            .fenced(self.id, (at, done_at), Some(fence_ms), "cut over");
        Ok(recorded.await?)
    }

    /// Inside the fence's transaction: the last changes, the comparison, the freeze.
    async fn fenced(&mut self) -> Result<(), ImportError> {
        let mut log = SourceLog {
            source: self.source,
            table: self.t,
            writer: &mut *self.writer,
            id: self.id,
        };
        let replayed = drain(&mut log, self.batch).await?;
        self.imports.replayed(self.id, replayed as i64, 0).await?;
        let into = self.writer.table().to_owned();
        let conns = self.writer.connections().await?;
        let (src, dst) = tokio::join!(
            verify::source(self.source, self.t),
            verify::shards(&conns, &into)
        );
        let ((src, nulls), dst) = (src?, dst?);
        if let Some(why) = verify::difference(src, nulls, dst) {
            return Err(ImportError::Verify(why));
        }
        self.source
            .client
            .batch_execute(&format!(
                "{} {}",
                self.t.freeze_sql(self.id, &into),
                self.t.release_sql(self.id)
            ))
            .await
            .map_err(self.source.fail("freezing the source table"))?;
        self.writer.raise_cache_epochs().await
    }
}
