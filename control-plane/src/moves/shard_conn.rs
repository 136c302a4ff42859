//! A connection to one shard's primary for the mover, and errors that name it. Its
//! writes are marked as a move's, which the change log does not record.

use futures_util::{SinkExt, StreamExt};
use tokio_postgres::Client;

use super::MoveError;
use crate::map::ShardMap;
use crate::postgres::connect as connect_postgres;
use shard_manager::config::ClusterSettings;
use shard_manager::error::sqlstate;
use shard_manager::routing::ShardId;
use shard_manager::servers::connection_url;

/// Marks a mover's session: the change log (`shard_manager::changes`) skips its writes.
pub const MOVE_ORIGIN: &str = "SET shardgate.origin = 'move'";

/// A primary the mover works on.
pub struct ShardConn {
    pub shard: ShardId,
    pub server: String,
    pub client: Client,
}

impl ShardConn {
    pub async fn open(
        settings: &ClusterSettings,
        map: &ShardMap,
        shard: ShardId,
    ) -> Result<Self, MoveError> {
        let entry = map
            .shards
            .get(shard.index())
            .ok_or_else(|| MoveError::Refused(format!("{shard} does not exist")))?;
        let server = entry.primary.clone();
        let url = connection_url(&settings.database, &server);
        let (client, connection) =
            connect_postgres(&url, &settings.database)
                .await
                .map_err(|reason| MoveError::Shard {
                    shard,
                    server: server.clone(),
                    doing: "connecting",
                    reason,
                    transient: true,
                })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "mover connection ended");
            }
        });
        let conn = Self {
            shard,
            server,
            client,
        };
        // What the mover writes (its copy, catch-up and cleanup) is not a change of the
        // data: the change log's trigger skips this session's writes.
        conn.client
            .batch_execute(MOVE_ORIGIN)
            .await
            .map_err(conn.fail("marking its writes as a move's"))?;
        Ok(conn)
    }

    /// Names this primary and the step in a query error.
    pub fn fail(&self, doing: &'static str) -> impl Fn(tokio_postgres::Error) -> MoveError + '_ {
        move |e| MoveError::Shard {
            shard: self.shard,
            server: self.server.clone(),
            doing,
            transient: transient(&e),
            reason: match e.as_db_error() {
                Some(db) => db.message().to_owned(),
                None => e.to_string(),
            },
        }
    }
}

/// A lost connection, or a server whose answer the SQLSTATE table counts
/// [`sqlstate::worth_waiting`] (shutting down, starting, short of resources, or
/// read-only: a primary promoted but not yet taking writes, which the failover watcher
/// may already have put in the map): worth waiting for. Anything else would fail again
/// the same way.
fn transient(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        None => true,
        Some(db) => sqlstate::worth_waiting(db.code().code()),
    }
}

/// The slots, in order, as a SQL list of integers (COPY takes no parameters).
pub fn sql_list(slots: &[i32]) -> String {
    let text: Vec<String> = slots.iter().map(i32::to_string).collect();
    text.join(",")
}

/// Every column of `records`, in the order the binary COPYs of a move use.
pub const COLUMNS: &str = "table_name, shard_key, id, slot, data, version, created_at, updated_at";

/// Streams the rows `select` finds on `source` into the target's `records` with binary
/// COPY (the bytes pass through untouched). Runs inside whatever transaction the
/// target has open. Returns the rows copied.
pub async fn pipe(source: &ShardConn, target: &ShardConn, select: &str) -> Result<u64, MoveError> {
    let fail = target.fail("copying rows in");
    let sink = target
        .client
        .copy_in(&format!(
            "COPY records ({COLUMNS}) FROM STDIN (FORMAT binary)"
        ))
        .await
        .map_err(&fail)?;
    let stream = source
        .client
        .copy_out(&format!("COPY ({select}) TO STDOUT (FORMAT binary)"))
        .await
        .map_err(source.fail("copying rows out"))?;
    futures_util::pin_mut!(sink);
    futures_util::pin_mut!(stream);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(source.fail("copying rows out"))?;
        sink.send(chunk).await.map_err(&fail)?;
    }
    sink.as_mut().finish().await.map_err(&fail)
}
