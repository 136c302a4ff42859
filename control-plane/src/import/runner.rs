//! The phases in order. `run` records an import after its checks (or finds the active
//! one into the same table) and takes it as far as asked: copied and in sync, or cut
//! over. The same call resumes an import whose process died.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::shards::Writer;
use super::source::Source;
use super::spec::SourceTable;
use super::state::{Import, Phase};
use super::store::{self, NewImport};
use super::{verify, ImportError};
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

/// Runs an import as far as `request` asks; `progress` is called after each step.
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
    let id = match store::active_into(&client, &request.into).await? {
        Some(found) => same_import(&found, &source, &t)?,
        None => start(&client, &source, &t, &mut writer, request).await?,
    };
    if !store::lock(&client, id).await? {
        return Err(ImportError::Refused(format!(
            "import {id} is being worked on by another process (it holds the import's lock); `shard-manager imports status {id}` follows it"
        )));
    }
    let mut job = Job {
        client: &client,
        source: &source,
        t: &t,
        writer: &mut writer,
        id,
        batch: request.batch,
        settings,
        progress,
    };
    let mut im = job.report().await?;
    if im.phase == Phase::Copying {
        job.copy(&im).await?;
        im = job.report().await?;
    }
    if matches!(im.phase, Phase::Syncing | Phase::CuttingOver) {
        job.catch_up().await?;
        im = job.report().await?;
    }
    if request.cutover && matches!(im.phase, Phase::Syncing | Phase::CuttingOver) {
        job.cut_over().await?;
        im = job.report().await?;
    }
    Ok(im)
}

/// The active import into the same table must be this one (same source, table and
/// columns); anything else is refused.
fn same_import(found: &Import, source: &Source, t: &SourceTable) -> Result<i64, ImportError> {
    let same = found.source == source.name
        && found.source_table == t.display()
        && found.key_column == t.key.name
        && found.id_column == t.id.name;
    if !same {
        return Err(ImportError::Refused(format!(
            "import {} is already filling {} (from {} {}, key {}, id {}): finish or abort it first (`shard-manager imports abort {} --source URL`)",
            found.id, found.into, found.source, found.source_table, found.key_column, found.id_column, found.id
        )));
    }
    Ok(found.id)
}

/// The checks of a new import, then its record. A refusal records nothing.
async fn start(
    client: &Client,
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
    let created = store::create(
        client,
        &NewImport {
            source: &source.name,
            source_table: &t.display(),
            key_column: &t.key.name,
            id_column: &t.id.name,
            into: &request.into,
            rows_total: total,
            actor: &meta::actor(),
        },
    )
    .await;
    created.map_err(|e| match e {
        ImportError::Query(q)
            if q.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
        {
            ImportError::Refused(format!(
                "another import into {} started meanwhile: `shard-manager imports status`",
                request.into
            ))
        }
        e => e,
    })
}

/// One import being worked on.
struct Job<'a> {
    client: &'a Client,
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
        let im = store::get(self.client, self.id).await?;
        (self.progress)(&im);
        Ok(im)
    }

    /// Capture first (so nothing changed from now on is missed), then the pages.
    async fn copy(&mut self, im: &Import) -> Result<(), ImportError> {
        let mut after = im.checkpoint.clone();
        if !self.source.has_trigger(self.t, self.id, "").await? {
            if after.is_some() {
                // Someone removed the capture: what changed meanwhile is unknown.
                store::restart_copy(self.client, self.id).await?;
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
            store::copied(self.client, self.id, &next, rows.len() as i64).await?;
            after = Some(next);
            self.throttle(limit).await?;
            self.report().await?;
        }
        store::set_phase(self.client, self.id, Phase::Syncing, "copied").await
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
        for _ in 0..MAX_PASSES {
            let applied = self.replay_batch().await?;
            let behind = self.source.backlog(self.id).await?;
            store::replayed(self.client, self.id, applied as i64, behind).await?;
            self.report().await?;
            if applied == 0 || behind <= FENCE_BACKLOG {
                return Ok(());
            }
        }
        Err(ImportError::Refused(format!(
            "import {}: the source changes faster than the import replays; run it again when it is quieter",
            self.id
        )))
    }

    /// Replays up to one batch of logged changes; returns how many entries it applied.
    async fn replay_batch(&mut self) -> Result<u64, ImportError> {
        let logged = self.source.logged(self.id, self.batch).await?;
        if logged.is_empty() {
            return Ok(0);
        }
        let mut pairs = Vec::new();
        let mut seen = HashSet::new();
        for entry in &logged {
            if let (Some(k), Some(i)) = (&entry.key, &entry.id) {
                if seen.insert((k.clone(), i.clone())) {
                    pairs.push((k.clone(), i.clone()));
                }
            }
        }
        let (keys, ids): (Vec<String>, Vec<String>) = pairs.iter().cloned().unzip();
        let found = self.source.lookup(self.t, &keys, &ids).await?;
        let present: HashSet<(&str, &str)> = found
            .iter()
            .map(|r| (r.key.as_str(), r.id.as_str()))
            .collect();
        let gone: Vec<(String, String)> = pairs
            .iter()
            .filter(|(k, i)| !present.contains(&(k.as_str(), i.as_str())))
            .cloned()
            .collect();
        self.writer.apply(&found, &gone).await?;
        fault("replay");
        let seqs: Vec<i64> = logged.iter().map(|l| l.seq).collect();
        self.source.forget(&seqs).await?;
        Ok(seqs.len() as u64)
    }

    /// The fence: writers to the source table wait while the last changes are
    /// replayed and both sides compared; on a match the table is frozen.
    async fn cut_over(&mut self) -> Result<(), ImportError> {
        store::set_phase(self.client, self.id, Phase::CuttingOver, "cutting over").await?;
        if self.source.has_trigger(self.t, self.id, "moved").await? {
            // Frozen by a cut-over whose process died before recording it.
            self.writer.raise_cache_epochs().await?;
            let note = "cut over (recorded by a later run: the run that froze the table died first, so its fence time is unknown)";
            return store::cut_over(self.client, self.id, None, note).await;
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
                store::set_phase(self.client, self.id, Phase::Syncing, &why).await?;
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
                    store::set_phase(self.client, self.id, Phase::Syncing, why).await?;
                }
                return Err(e);
            }
        };
        done?;
        let fence_ms = started.elapsed().as_millis() as i64;
        fault("frozen");
        store::cut_over(self.client, self.id, Some(fence_ms), "cut over").await
    }

    /// Inside the fence's transaction: the last changes, the comparison, the freeze.
    async fn fenced(&mut self) -> Result<(), ImportError> {
        let mut replayed = 0;
        loop {
            let n = self.replay_batch().await?;
            if n == 0 {
                break;
            }
            replayed += n;
        }
        store::replayed(self.client, self.id, replayed as i64, 0).await?;
        let into = self.writer_table();
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

    fn writer_table(&self) -> String {
        self.writer.table().to_owned()
    }
}
