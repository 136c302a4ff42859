//! The coordinator log in the metadata database (table `txn_log`, schema step 9), over
//! one tokio-postgres connection shared by every request (its queries pipeline), opened
//! on first use and again after it fails. The first decision written for a
//! transaction stands (`INSERT ... ON CONFLICT` returns the one already there).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_postgres::Client;

use shard_manager::cluster::txn::log::{Decision, DecisionLog, LogFuture};
use shard_manager::config::ClusterSettings;
use shard_manager::routing::ShardId;

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
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// The log, as one gateway reaches it.
pub struct MetaLog {
    settings: ClusterSettings,
    client: Mutex<Option<Arc<Client>>>,
}

impl MetaLog {
    pub fn new(settings: ClusterSettings) -> Self {
        Self {
            settings,
            client: Mutex::new(None),
        }
    }

    /// The open connection, or a new one (the schema's steps applied first, so the
    /// table exists whoever connects first).
    async fn client(&self) -> Result<Arc<Client>, String> {
        let mut held = self.client.lock().await;
        if let Some(client) = held.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let mut conn = meta::connect(&self.settings)
            .await
            .map_err(|e| e.to_string())?;
        schema::apply(&mut conn.client)
            .await
            .map_err(|e| e.to_string())?;
        let client = Arc::new(conn.client);
        *held = Some(client.clone());
        Ok(client)
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
            let client = self.client().await?;
            let shards: Vec<i32> = shards.iter().map(|s| s.0 as i32).collect();
            let row = client
                .query_one(
                    // The shared fence lock first (see DECISION_FENCE_LOCK), held until
                    // this statement's transaction commits.
                    "INSERT INTO txn_log (txid, decision, shards) \
                     SELECT $1::text, $2::text, $3::int4[] FROM (SELECT pg_advisory_xact_lock_shared($4::int8)) AS fence \
                     ON CONFLICT (txid) DO UPDATE SET txid = txn_log.txid RETURNING decision",
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
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT txid, decision FROM txn_log WHERE txid = ANY($1)",
                    &[&txids],
                )
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

    fn finished<'a>(&'a self, txid: &'a str) -> LogFuture<'a, ()> {
        Box::pin(self.bounded(async move {
            let client = self.client().await?;
            client
                .execute(
                    "UPDATE txn_log SET finished_at = now() \
                     WHERE txid = $1 AND finished_at IS NULL",
                    &[&txid],
                )
                .await
                .map_err(|e| e.to_string())?;
            Ok(())
        }))
    }
}
