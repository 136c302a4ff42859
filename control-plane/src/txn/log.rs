//! The coordinator log in the metadata database (table `txn_log`, a metadata migration), over
//! one tokio-postgres connection shared by every request (its queries pipeline), opened
//! on first use and again after it fails, with its statements prepared once (a call is
//! one round trip, not a parse and an execute). The first decision written for a
//! transaction stands (`INSERT ... ON CONFLICT` returns the one already there).
//! `finished_at` marks are written in batches, off the request path ([`super::finished`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_postgres::{Client, Statement};

use shard_manager::cluster::txn::log::{Decision, DecisionLog, LogFuture, CALL_BOUND};
use shard_manager::config::ClusterSettings;
use shard_manager::routing::ShardId;

use super::finished::{Pending, FLUSH_EVERY};
use crate::map::{meta, schema};

/// Advisory lock (metadata database) that every decision write takes *shared*, for the
/// length of its own transaction, and a cluster restore point (`backup::point`) takes
/// *exclusive* while it names a point on every server. Why: a transaction whose
/// decision was written before the point's lock is prepared (or already committed) on
/// every shard at the point, and its decision is in the metadata database at the point,
/// so after a restore the recovery finishes it from `txn_log`; a transaction decided
/// after the lock was committed nowhere before the point (COMMIT PREPARED follows the
/// decision), so after a restore its prepared parts have no decision and roll back.
/// Either way no restore to the point holds half of one.
pub const DECISION_FENCE_LOCK: i64 = 0x0053_4746_454e_4345; // "SGFENCE"

/// How long one log call may take before it counts as failed.
const CALL_TIMEOUT: Duration = CALL_BOUND;

/// The log, as one gateway reaches it.
pub struct MetaLog {
    settings: ClusterSettings,
    conn: Mutex<Option<Arc<Conn>>>,
    finished: Arc<Pending>,
}

/// The shared connection and its prepared statements.
struct Conn {
    client: Client,
    settle: Statement,
    decisions: Statement,
    finish: Statement,
}

impl MetaLog {
    pub fn new(settings: ClusterSettings) -> Self {
        Self {
            settings,
            conn: Mutex::new(None),
            finished: Arc::default(),
        }
    }

    /// The open connection, or a new one (the metadata migrations applied first, so the
    /// table exists whoever connects first; then the statements prepared).
    async fn conn(&self) -> Result<Arc<Conn>, String> {
        let mut held = self.conn.lock().await;
        if let Some(conn) = held.as_ref().filter(|c| !c.client.is_closed()) {
            return Ok(conn.clone());
        }
        let mut opened = meta::connect(&self.settings)
            .await
            .map_err(|e| e.to_string())?;
        schema::apply(&mut opened.client)
            .await
            .map_err(|e| e.to_string())?;
        let client = opened.client;
        let prepare = |sql: &'static str| client.prepare(sql);
        let (settle, decisions, finish) = tokio::try_join!(
            // The shared fence lock first (see DECISION_FENCE_LOCK), held until this
            // statement's transaction commits.
            prepare(
                "INSERT INTO txn_log (txid, decision, shards) \
                 SELECT $1::text, $2::text, $3::int4[] FROM (SELECT pg_advisory_xact_lock_shared($4::int8)) AS fence \
                 ON CONFLICT (txid) DO UPDATE SET txid = txn_log.txid RETURNING decision"
            ),
            prepare("SELECT txid, decision FROM txn_log WHERE txid = ANY($1)"),
            prepare(
                "UPDATE txn_log SET finished_at = now() \
                 WHERE txid = ANY($1::text[]) AND finished_at IS NULL"
            ),
        )
        .map_err(|e| e.to_string())?;
        let conn = Arc::new(Conn {
            client,
            settle,
            decisions,
            finish,
        });
        *held = Some(conn.clone());
        Ok(conn)
    }

    async fn bounded<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, String>>,
    ) -> Result<T, String> {
        match tokio::time::timeout(CALL_TIMEOUT, work).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "the metadata database did not answer within {} ms",
                CALL_TIMEOUT.as_millis()
            )),
        }
    }
}

impl DecisionLog for MetaLog {
    fn settle<'a>(
        &'a self,
        txid: &'a str,
        wanted: Decision,
        shards: &'a [ShardId],
    ) -> LogFuture<'a, Decision> {
        Box::pin(self.bounded(async move {
            let conn = self.conn().await?;
            let shards: Vec<i32> = shards.iter().map(|s| s.0 as i32).collect();
            let row = conn
                .client
                .query_one(
                    &conn.settle,
                    &[&txid, &wanted.as_str(), &shards, &DECISION_FENCE_LOCK],
                )
                .await
                .map_err(|e| e.to_string())?;
            let decided: String = row.get(0);
            Decision::parse(&decided).ok_or_else(|| format!("unknown decision {decided:?}"))
        }))
    }

    fn decisions<'a>(&'a self, txids: &'a [String]) -> LogFuture<'a, HashMap<String, Decision>> {
        Box::pin(self.bounded(async move {
            let conn = self.conn().await?;
            let rows = conn
                .client
                .query(&conn.decisions, &[&txids])
                .await
                .map_err(|e| e.to_string())?;
            Ok(rows
                .iter()
                .filter_map(|r| {
                    let txid: String = r.get(0);
                    let decision: String = r.get(1);
                    Some((txid, Decision::parse(&decision)?))
                })
                .collect())
        }))
    }

    /// Notes the mark and returns at once; the first mark of a batch schedules its
    /// write [`FLUSH_EVERY`] later (see [`super::finished`]).
    fn finished<'a>(&'a self, txid: &'a str) -> LogFuture<'a, ()> {
        Box::pin(async move {
            if !self.finished.note(txid) {
                return Ok(());
            }
            let conn = match self.bounded(self.conn()).await {
                Ok(conn) => conn,
                Err(e) => {
                    self.finished.take();
                    return Err(e);
                }
            };
            let pending = self.finished.clone();
            tokio::spawn(async move {
                tokio::time::sleep(FLUSH_EVERY).await;
                let txids = pending.take();
                if let Err(e) = conn.client.execute(&conn.finish, &[&txids]).await {
                    tracing::debug!(marks = txids.len(), error = %e, "finished marks not written");
                }
            });
            Ok(())
        })
    }
}
