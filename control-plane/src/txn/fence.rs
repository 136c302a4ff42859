//! The cluster fence for snapshot reads (the request path's `CutFence`): the metadata
//! database's [`DECISION_FENCE_LOCK`] taken *exclusive* inside a transaction, on one
//! connection of its own per gateway (the log's shared connection must never wait
//! behind it: its decision writes would queue behind a lock this gateway holds). A
//! gateway's snapshot reads take it one at a time (a mutex over the connection).
//!
//! Nothing a reader leaves behind holds the fence:
//! - the take is safe to drop at any await (the client hung up, a timeout fired): the
//!   held fence exists before the take is sent, so dropping the take drops it, which
//!   closes the connection's socket at once (its driver task is aborted). A lock
//!   granted on the server after the asker went away is never kept: the session ends
//!   with its socket, and while it still waits for the lock the server notices the
//!   closed socket within [`CHECK_EVERY`] (`client_connection_check_interval`);
//! - the lock's wait is bounded ([`LOCK_WAIT`], `lock_timeout`);
//! - a holder that stops talking (a gateway frozen by SIGSTOP, a partition, a VM
//!   paused) loses its session after [`IDLE_BOUND`] idle in the fence's transaction
//!   (`idle_in_transaction_session_timeout`), which lifts the fence;
//! - a gateway killed while it holds the fence lifts it when its socket closes;
//! - a gateway that drops out of the live list has its fence session ended by the
//!   others (`map::gateways::end_fences_of_the_gone`; the session is named for its
//!   gateway, [`fence_session_name`]).

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
use crate::map::gateways::fence_session_name;
use crate::map::{meta, schema};

/// How long taking the fence may wait for the decisions being written (and for other
/// gateways' snapshot readers) before the read fails.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);
/// The longest the fence's session may sit idle inside the fence's transaction before
/// the server ends it (and so lifts the fence): longer than a reader ever waits between
/// two of its statements under the fence (a round on every shard, and at most
/// `FENCE_WAIT` for decided parts to commit), far shorter than any client's patience.
pub const IDLE_BOUND: Duration = Duration::from_secs(3);
/// How often the server looks, while a statement of the fence's session runs (the
/// lock's wait), whether the gateway's socket is still there.
pub const CHECK_EVERY: Duration = Duration::from_millis(100);

/// The fence's own connection: dropped, its socket is closed at once.
struct FenceConn {
    client: Client,
    driver: tokio::task::AbortHandle,
}

impl Drop for FenceConn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// The fence, as one gateway takes it.
pub struct MetaFence {
    settings: ClusterSettings,
    /// The session's `application_name`, naming the gateway.
    name: String,
    conn: Arc<Mutex<Option<FenceConn>>>,
}

impl MetaFence {
    /// The fence of the gateway `gateway` (its id among the gateways listed).
    pub fn new(settings: ClusterSettings, gateway: &uuid::Uuid) -> Self {
        Self {
            settings,
            name: fence_session_name(gateway),
            conn: Arc::default(),
        }
    }
}

/// The fence, held on the guarded connection.
struct Held {
    conn: Option<OwnedMutexGuard<Option<FenceConn>>>,
    since: Instant,
}

impl CutFence for MetaFence {
    fn hold(&self) -> LogFuture<'_, Box<dyn HeldFence>> {
        Box::pin(async move {
            let mut guard = self.conn.clone().lock_owned().await;
            if guard.as_ref().is_none_or(|c| c.client.is_closed()) {
                *guard = None;
                *guard = Some(
                    tokio::time::timeout(CALL_BOUND, open(&self.settings, &self.name))
                        .await
                        .map_err(|_| "the metadata database did not answer in time".to_owned())??,
                );
            }
            // Held from here: dropping this future at any await below drops `held`,
            // which closes the connection (and so lifts a lock granted meanwhile).
            let mut held = Held {
                conn: Some(guard),
                since: Instant::now(),
            };
            let Some(client) = held.client() else {
                return Err("no connection to the metadata database".to_owned());
            };
            let take = format!(
                "BEGIN; SET LOCAL lock_timeout = '{}ms'; \
                 SET LOCAL idle_in_transaction_session_timeout = '{}ms'; \
                 SELECT pg_advisory_xact_lock({DECISION_FENCE_LOCK})",
                LOCK_WAIT.as_millis(),
                IDLE_BOUND.as_millis()
            );
            match tokio::time::timeout(LOCK_WAIT + CALL_BOUND, client.batch_execute(&take)).await {
                Ok(Ok(())) => {
                    held.since = Instant::now();
                    Ok(Box::new(held) as Box<dyn HeldFence>)
                }
                // `held` is dropped: the connection with it.
                Ok(Err(e)) => Err(format!("the fence was not taken: {e}")),
                Err(_) => Err(format!(
                    "the fence was not taken within {} ms",
                    (LOCK_WAIT + CALL_BOUND).as_millis()
                )),
            }
        })
    }
}

/// A new connection for the fence, named `name`: the log's table made sure of, and the
/// server told to watch the socket while a statement runs.
async fn open(settings: &ClusterSettings, name: &str) -> Result<FenceConn, String> {
    let opened = meta::connect(settings).await.map_err(|e| e.to_string())?;
    let mut conn = FenceConn {
        client: opened.client,
        driver: opened.driver,
    };
    // txn_log must exist for the decisions to be read.
    schema::apply(&mut conn.client)
        .await
        .map_err(|e| e.to_string())?;
    // `name` is ours: "shardgate fence " and a UUID.
    let watch = format!(
        "SET client_connection_check_interval = '{}ms'; SET application_name = '{name}'",
        CHECK_EVERY.as_millis()
    );
    conn.client
        .batch_execute(&watch)
        .await
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

impl Held {
    fn client(&self) -> Option<&Client> {
        self.conn
            .as_ref()
            .and_then(|g| g.as_ref())
            .map(|c| &c.client)
    }
}

impl HeldFence for Held {
    fn committed<'a>(
        &'a mut self,
        txids: &'a [String],
    ) -> LogFuture<'a, HashMap<String, Vec<ShardId>>> {
        Box::pin(async move {
            let Some(client) = self.client() else {
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
            let Some(client) = self.client() else {
                return Err("the fence's connection is gone".to_owned());
            };
            // Until the commit's answer is read, dropping this future drops `self`,
            // which closes the connection: a commit never seen to finish is never
            // followed on this connection by the next reader's take.
            match tokio::time::timeout(CALL_BOUND, client.batch_execute("COMMIT")).await {
                Ok(Ok(())) => {
                    // Released: the connection goes back for the next reader.
                    drop(self.conn.take());
                    Ok(self.since.elapsed())
                }
                Ok(Err(e)) => Err(format!("the fence was not released cleanly: {e}")),
                Err(_) => Err("the fence's release got no answer in time".to_owned()),
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
