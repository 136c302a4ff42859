//! Every primary brought to what the metadata database records: an index built where
//! it is missing (or was interrupted: its INVALID leftover dropped first), a failed
//! build's leftover dropped, an index dropped everywhere once a drop was asked (then
//! its row removed). Run after each change and every few seconds by a gateway's
//! [`Reconciler`], so a build a restart stopped is resumed; `shard-admin index` runs it
//! to the end. Workers on one index and shard never overlap, whichever gateway they
//! are in: each holds the index's lock on that primary ([`super::on_shard`]).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;
use shard_manager::config::ClusterSettings;
use shard_manager::store::query_index::IndexSpec;
use tokio::sync::Notify;

use super::on_shard::{Catalog, Primary};
use super::store::{self, IndexRow};
use super::IndexError;
use crate::map::{change, meta};

/// How an index stands on one shard.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IndexShardState {
    pub shard: u32,
    /// `building`, `valid`, `failed`, `dropping`, `dropped`, or `unknown` (the primary
    /// did not answer).
    pub state: String,
    /// Why it failed (or could not be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An index and how it stands on every shard.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IndexView {
    pub name: String,
    pub table: String,
    pub fields: Vec<String>,
    /// `valid` on every shard, `failed` on one at least, `dropping`, else `building`.
    pub state: String,
    pub shards: Vec<IndexShardState>,
}

/// Records `spec` as wanted on every shard (asked again: left as it is, a shard whose
/// build failed built again). Its name. Building is [`reconcile`]'s.
pub async fn create(settings: &ClusterSettings, spec: &IndexSpec) -> Result<String, IndexError> {
    let conn = meta::connect(settings).await?;
    let name = spec.name();
    store::insert(&conn.client, &name, &spec.table, &spec.field_names()).await?;
    Ok(name)
}

/// Asks for `name` to be dropped from every shard. Dropping is [`reconcile`]'s.
pub async fn drop_index(settings: &ClusterSettings, name: &str) -> Result<(), IndexError> {
    let conn = meta::connect(settings).await?;
    match store::mark_dropping(&conn.client, name).await? {
        true => Ok(()),
        false => Err(IndexError::NoSuchIndex(name.to_owned())),
    }
}

/// The live shards: id and primary.
async fn primaries(settings: &ClusterSettings) -> Result<Vec<(u32, String)>, IndexError> {
    let map = change::current(settings).await?;
    Ok(map
        .shards
        .iter()
        .filter(|s| !s.retired)
        .map(|s| (s.id.0, s.primary.clone()))
        .collect())
}

/// Every recorded index (`name`: that one only) with each live shard's state, read
/// from its catalog.
pub async fn list(
    settings: &ClusterSettings,
    name: Option<&str>,
) -> Result<Vec<IndexView>, IndexError> {
    let conn = meta::connect(settings).await?;
    let rows: Vec<IndexRow> = store::all(&conn.client)
        .await?
        .into_iter()
        .filter(|r| name.is_none_or(|n| n == r.name))
        .collect();
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let shards = primaries(settings).await?;
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        let states = join_all(shards.iter().map(|(id, server)| {
            let row = &row;
            async move {
                match shard_state(settings, row, *id, server).await {
                    Ok(s) => s,
                    Err(e) => IndexShardState {
                        shard: *id,
                        state: "unknown".into(),
                        error: Some(e.to_string()),
                    },
                }
            }
        }))
        .await;
        let state = if row.dropping {
            "dropping"
        } else if states.iter().any(|s| s.state == "failed") {
            "failed"
        } else if states.iter().all(|s| s.state == "valid") {
            "valid"
        } else {
            "building"
        };
        views.push(IndexView {
            name: row.name,
            table: row.table,
            fields: row.fields,
            state: state.into(),
            shards: states,
        });
    }
    Ok(views)
}

async fn shard_state(
    settings: &ClusterSettings,
    row: &IndexRow,
    shard: u32,
    server: &str,
) -> Result<IndexShardState, IndexError> {
    let primary = Primary::open(settings, shard, server).await?;
    let catalog = primary.catalog(&row.name).await?;
    let recorded = row.shards.iter().find(|(s, _, _)| *s == shard);
    let (state, error) = match (row.dropping, catalog, recorded) {
        (true, Catalog::Missing, _) => ("dropped", None),
        (true, _, _) => ("dropping", None),
        (false, Catalog::Valid, _) => ("valid", None),
        (false, _, Some((_, st, e))) if st == "failed" => ("failed", e.clone()),
        (false, _, _) => ("building", None),
    };
    Ok(IndexShardState {
        shard,
        state: state.into(),
        error,
    })
}

/// One pass: every recorded index on every live shard, shards at once. A shard's
/// interruption (a restart) is left for the next pass; its error is returned after
/// the others were done.
pub async fn reconcile(settings: &ClusterSettings) -> Result<(), IndexError> {
    let conn = meta::connect(settings).await?;
    let rows = store::all(&conn.client).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let shards = primaries(settings).await?;
    let mut first_error = None;
    for row in rows {
        let pending: Vec<&(u32, String)> = shards
            .iter()
            .filter(|(id, _)| {
                row.dropping
                    || !row
                        .shards
                        .iter()
                        .any(|(s, st, _)| s == id && (st == "valid" || st == "failed"))
            })
            .collect();
        let results = join_all(
            pending
                .iter()
                .map(|(id, server)| on_one(settings, &conn.client, &row.name, *id, server)),
        )
        .await;
        let mut all_gone = row.dropping;
        for r in results {
            match r {
                Ok(gone) => all_gone &= gone,
                Err(e) => {
                    all_gone = false;
                    tracing::warn!(index = %row.name, error = %e, "index work stopped; tried again later");
                    first_error.get_or_insert(e);
                }
            }
        }
        if all_gone {
            store::remove(&conn.client, &row.name).await?;
            tracing::info!(index = %row.name, "index dropped from every shard");
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Brings one shard to what is recorded for `name` (read again under its lock).
/// Returns whether the index is gone from this shard (for a drop).
async fn on_one(
    settings: &ClusterSettings,
    meta: &tokio_postgres::Client,
    name: &str,
    shard: u32,
    server: &str,
) -> Result<bool, IndexError> {
    let primary = Primary::open(settings, shard, server).await?;
    if !primary.try_lock(name).await? {
        return Ok(false);
    }
    let shard_error = |doing, e: super::on_shard::WorkError| IndexError::Shard {
        shard,
        server: server.to_owned(),
        doing,
        reason: e.reason,
    };
    let row = store::one(meta, name).await?;
    let Some(row) = row.filter(|r| !r.dropping) else {
        primary
            .drop_index(name)
            .await
            .map_err(|e| shard_error("dropping the index", e))?;
        return Ok(true);
    };
    let recorded = row
        .shards
        .iter()
        .find(|(s, _, _)| *s == shard)
        .map(|(_, st, _)| st.as_str());
    let catalog = primary.catalog(name).await?;
    match (catalog, recorded) {
        (Catalog::Valid, Some("valid")) => return Ok(false),
        (Catalog::Valid, _) => {
            store::set_shard(meta, name, shard, "valid", None).await?;
            return Ok(false);
        }
        (Catalog::Missing, Some("failed")) => return Ok(false),
        (Catalog::Invalid, Some("failed")) => {
            primary
                .drop_index(name)
                .await
                .map_err(|e| shard_error("dropping a failed build's leftover", e))?;
            return Ok(false);
        }
        (Catalog::Invalid, _) => {
            tracing::info!(
                index = name,
                shard,
                "an interrupted build's leftover dropped; building again"
            );
            primary
                .drop_index(name)
                .await
                .map_err(|e| shard_error("dropping an interrupted build's leftover", e))?;
        }
        (Catalog::Missing, _) => {}
    }
    let spec = IndexSpec::parse(&row.table, &row.fields).map_err(|e| IndexError::Shard {
        shard,
        server: server.to_owned(),
        doing: "reading the recorded index",
        reason: e.to_string(),
    })?;
    store::set_shard(meta, name, shard, "building", None).await?;
    tracing::info!(index = name, shard, "building the index");
    match primary.build(&spec).await {
        Ok(()) => {
            store::set_shard(meta, name, shard, "valid", None).await?;
            tracing::info!(index = name, shard, "index built");
        }
        Err(e) if e.transient => return Err(shard_error("building the index", e)),
        Err(e) => {
            tracing::warn!(index = name, shard, error = %e.reason, "index build failed");
            store::set_shard(meta, name, shard, "failed", Some(&e.reason)).await?;
            primary
                .drop_index(name)
                .await
                .map_err(|e| shard_error("dropping a failed build's leftover", e))?;
        }
    }
    Ok(false)
}

/// A gateway's background reconcile: a pass when woken ([`Reconciler::wake`], after a
/// change) and every `every`; stops when dropped. A build in progress then goes on
/// on its server, its lock released with the connection; a later pass takes it up.
pub struct Reconciler {
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Reconciler {
    pub fn start(settings: ClusterSettings, every: Duration) -> Self {
        let wake = Arc::new(Notify::new());
        let woken = wake.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Err(e) = reconcile(&settings).await {
                    tracing::debug!(error = %e, "index reconcile pass");
                }
                tokio::select! {
                    _ = woken.notified() => {}
                    _ = tokio::time::sleep(every) => {}
                }
            }
        });
        Self { wake, task }
    }

    /// Asks for a pass now (or right after the one under way).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

impl Drop for Reconciler {
    fn drop(&mut self) {
        self.task.abort();
    }
}
