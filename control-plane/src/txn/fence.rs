//! The cluster fence for snapshot reads (the request path's `CutFence`): the metadata
//! database's [`DECISION_FENCE_LOCK`] taken *exclusive* inside a transaction, on one
//! connection of its own per gateway (the log's shared connection must never wait
//! behind it: its decision writes would queue behind a lock this gateway holds). A
//! gateway's snapshot reads take it one at a time (a mutex over the connection); the
//! lock's wait is bounded (`lock_timeout`), and a holder that fails or is dropped
//! closes the connection, which lifts the fence on the server at once. A gateway killed
//! while it holds the fence lifts it the same way, when its socket closes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio_postgres::types::Type;
use tokio_postgres::Client;

use shard_manager::cluster::snapshot::fence::{CutFence, HeldFence};
use shard_manager::cluster::txn::log::{LogFuture, CALL_BOUND};
use shard_manager::config::ClusterSettings;
use shard_manager::routing::ShardId;

use super::log::DECISION_FENCE_LOCK;
use crate::map::{meta, schema};

/// How long taking the fence may wait for the decisions being written (and for other
/// gateways' snapshot readers) before the read fails.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

/// The fence, as one gateway takes it.
pub struct MetaFence {
    settings: ClusterSettings,
    conn: Arc<Mutex<Option<Client>>>,
}

impl MetaFence {
    pub fn new(settings: ClusterSettings) -> Self {
        Self {
            settings,
            conn: Arc::default(),
        }
    }
}

/// The fence, held on the guarded connection.
struct Held {
    conn: Option<OwnedMutexGuard<Option<Client>>>,
    since: Instant,
}

impl CutFence for MetaFence {
    fn hold(&self) -> LogFuture<'_, Box<dyn HeldFence>> {
        Box::pin(async move {
            let mut guard = self.conn.clone().lock_owned().await;
            if guard.as_ref().is_none_or(|c| c.is_closed()) {
                let mut opened = tokio::time::timeout(CALL_BOUND, meta::connect(&self.settings))
                    .await
                    .map_err(|_| "the metadata database did not answer in time".to_owned())?
                    .map_err(|e| e.to_string())?;
                // txn_log must exist for the decisions to be read.
                schema::apply(&mut opened.client)
                    .await
                    .map_err(|e| e.to_string())?;
                *guard = Some(opened.client);
            }
            let Some(client) = guard.as_ref() else {
                return Err("no connection to the metadata database".to_owned());
            };
            let take = format!(
                "BEGIN; SET LOCAL lock_timeout = '{}ms'; SELECT pg_advisory_xact_lock({DECISION_FENCE_LOCK})",
                LOCK_WAIT.as_millis()
            );
            let taken =
                tokio::time::timeout(LOCK_WAIT + CALL_BOUND, client.batch_execute(&take)).await;
            match taken {
                Ok(Ok(())) => Ok(Box::new(Held {
                    conn: Some(guard),
                    since: Instant::now(),
                }) as Box<dyn HeldFence>),
                Ok(Err(e)) => {
                    *guard = None;
                    Err(format!("the fence was not taken: {e}"))
                }
                Err(_) => {
                    *guard = None;
                    Err(format!(
                        "the fence was not taken within {} ms",
                        (LOCK_WAIT + CALL_BOUND).as_millis()
                    ))
                }
            }
        })
    }
}

impl HeldFence for Held {
    fn committed<'a>(
        &'a mut self,
        txids: &'a [String],
    ) -> LogFuture<'a, HashMap<String, Vec<ShardId>>> {
        Box::pin(async move {
            let Some(client) = self.conn.as_ref().and_then(|g| g.as_ref()) else {
                return Err("the fence's connection is gone".to_owned());
            };
            // Typed, so it is one round trip (an untyped query is prepared first: two),
            // and this one is made with the fence held.
            let rows = tokio::time::timeout(
                CALL_BOUND,
                client.query_typed(
                    "SELECT txid, shards FROM txn_log WHERE txid = ANY($1) AND decision = 'commit'",
                    &[(&txids, Type::TEXT_ARRAY)],
                ),
            )
            .await
            .map_err(|_| "the metadata database did not answer in time".to_owned())?
            .map_err(|e| e.to_string())?;
            Ok(rows
                .iter()
                .map(|r| {
                    let shards: Vec<i32> = r.get(1);
                    let shards = shards.into_iter().map(|s| ShardId(s as u32)).collect();
                    (r.get::<_, String>(0), shards)
                })
                .collect())
        })
    }

    fn release(mut self: Box<Self>) -> LogFuture<'static, Duration> {
        Box::pin(async move {
            let Some(mut guard) = self.conn.take() else {
                return Err("the fence's connection is gone".to_owned());
            };
            let Some(client) = guard.as_ref() else {
                return Err("the fence's connection is gone".to_owned());
            };
            match tokio::time::timeout(CALL_BOUND, client.batch_execute("COMMIT")).await {
                Ok(Ok(())) => Ok(self.since.elapsed()),
                Ok(Err(e)) => {
                    *guard = None;
                    Err(format!("the fence was not released cleanly: {e}"))
                }
                Err(_) => {
                    *guard = None;
                    Err("the fence's release got no answer in time".to_owned())
                }
            }
        })
    }
}

impl Drop for Held {
    /// Dropped while held (a failure, or the request went away): the connection is
    /// closed, which lifts the fence.
    fn drop(&mut self) {
        if let Some(mut guard) = self.conn.take() {
            *guard = None;
        }
    }
}
