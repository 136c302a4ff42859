//! `shard-admin backup`, in order: refuse while a slot move or an import is active
//! (or another backup runs), reach every server, back up each stanza with pgBackRest,
//! then name a cluster restore point (after the backups: a restore replays WAL from a
//! backup forward, so a point is reachable only from backups taken before it), wait
//! for its WAL in the archive, and only then record it. Any failure before the record
//! leaves no point recorded.

use std::time::{Duration, Instant};

use chrono::Utc;
use tokio_postgres::Client;

use shard_manager::config::ClusterSettings;

use super::error::BackupError;
use super::pgbackrest::{BackupKind, Runner};
use super::point::{self, describe, RestorePoint};
use super::repo;
use super::stanza;
use crate::map::{meta, schema, MapError};

/// Advisory lock (metadata database, session) held by a running backup: one at a time.
pub const BACKUP_RUN_LOCK: i64 = 0x0053_4742_4143_4b55; // "SGBACKU"

/// What a backup did.
#[derive(Debug)]
pub struct Taken {
    pub kind: BackupKind,
    /// Each stanza backed up, and how long pgBackRest took.
    pub stanzas: Vec<(String, String, Duration)>,
    pub point: RestorePoint,
}

/// What a backup reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Progress<'a> {
    /// A step begins.
    Step(&'a str),
    /// pgBackRest's copy of the stanza at `index` (of `of`) is `percent` done (polled
    /// every [`PROGRESS_EVERY`]).
    Copying {
        stanza: &'a str,
        index: usize,
        of: usize,
        percent: f64,
    },
}

/// How often a running pgBackRest backup is asked how far it is.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Runs a backup; `progress` hears each step as it starts, and each stanza's copy.
pub async fn take(
    settings: &ClusterSettings,
    kind: BackupKind,
    progress: impl Fn(Progress<'_>),
) -> Result<Taken, BackupError> {
    let step = |text: &str| progress(Progress::Step(text));
    let runner = Runner::new(&settings.backup)?;
    let repo = repo::usable(&runner, true).await?;
    let mut conn = meta::connect(settings).await?;
    schema::apply(&mut conn.client).await?;
    let map = meta::load(&mut conn.client)
        .await?
        .ok_or(MapError::NotInitialised)?;
    let client = &conn.client;
    let got: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&BACKUP_RUN_LOCK])
        .await
        .map_err(MapError::Query)?
        .get(0);
    if !got {
        return Err(BackupError::Refused(
            "another shard-admin backup is running".into(),
        ));
    }
    if let Some(busy) = busy(client).await? {
        return Err(BackupError::Refused(format!(
            "{busy} is active; run the backup once it is done or aborted"
        )));
    }
    let targets = stanza::targets(&map, &settings.metadata.address);
    step(&format!("reaching {} servers", targets.len()));
    let servers = point::connect_all(settings, &targets).await?;
    let mut stanzas = Vec::with_capacity(targets.len());
    for (index, target) in targets.iter().enumerate() {
        step(&format!(
            "pgbackrest {} backup of {}",
            kind.as_str(),
            describe(target)
        ));
        let started = Instant::now();
        let copying = |percent| Progress::Copying {
            stanza: &target.stanza,
            index,
            of: targets.len(),
            percent,
        };
        progress(copying(0.0));
        let backup = runner.backup(target, kind);
        tokio::pin!(backup);
        let mut ticker = tokio::time::interval(PROGRESS_EVERY);
        let done = loop {
            tokio::select! {
                done = &mut backup => break done,
                _ = ticker.tick() => {
                    if let Some(percent) = runner.percent_done(target).await {
                        progress(copying(percent));
                    }
                }
            }
        };
        done.map_err(|e| repo::explain_failure(&repo, e))?;
        progress(copying(100.0));
        stanzas.push((
            target.stanza.clone(),
            target.address.clone(),
            started.elapsed(),
        ));
    }
    let name = point::name_at(Utc::now());
    step(&format!("restore point {name} on every server"));
    let point = servers.create(&name).await?;
    step(&format!(
        "waiting for the WAL of {name} in the archive (fence was {} ms)",
        point.fence_ms
    ));
    servers
        .archived(&point, settings.backup.archive_wait())
        .await?;
    // Test-only (feature `faults`): a kill here leaves a point named on every server,
    // its WAL archived, and no record: restore must not trust it.
    shard_manager::fault::BACKUP.reach("before-record");
    record(client, &point, kind).await?;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&BACKUP_RUN_LOCK])
        .await;
    Ok(Taken {
        kind,
        stanzas,
        point,
    })
}

/// The slot move or import active now, named; None when there is none.
pub(super) async fn busy(client: &Client) -> Result<Option<String>, BackupError> {
    let row = client
        .query_opt(
            "SELECT format('slot move %s (shard-%s to shard-%s, phase %s)', id, source, target, phase)
               FROM moves WHERE phase NOT IN ('done', 'aborted')
             UNION ALL
             SELECT format('import %s into table %s (phase %s)', id, into_table, phase)
               FROM imports WHERE phase NOT IN ('done', 'aborted')
             LIMIT 1",
            &[],
        )
        .await
        .map_err(MapError::Query)?;
    Ok(row.map(|r| r.get(0)))
}

async fn record(
    client: &Client,
    point: &RestorePoint,
    kind: BackupKind,
) -> Result<(), BackupError> {
    let servers = serde_json::to_string(&point.servers).map_err(|e| {
        BackupError::server(
            "the metadata server",
            format!("the point's servers as JSON: {e}"),
        )
    })?;
    client
        .execute(
            "INSERT INTO restore_points (name, created_at, map_version, backup_type, fence_ms, servers)
             VALUES ($1, $2::text::timestamptz, $3, $4, $5, $6::text::jsonb)",
            &[
                &point.name,
                &point.at.to_rfc3339(),
                &point.map_version,
                &kind.as_str(),
                &(point.fence_ms as i64),
                &servers,
            ],
        )
        .await
        .map_err(MapError::Query)?;
    Ok(())
}
