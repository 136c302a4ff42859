//! A server that must not take writes, told so where the shard enforces it: its slot
//! ownership (`shardgate_slots`) emptied at the current map version, in one
//! transaction that first takes every owned slot's advisory lock, so writes in flight
//! there finish first and every later one (and every read) is refused with SG001
//! naming that version: a stale gateway reloads the map and reroutes to the primary
//! the map names. Used on an old primary that came back writable (split brain).
//!
//! Never lowers what the server was told: a server told a newer version is left as it
//! is.

use crate::map::MapError;
use crate::postgres::connect as connect_postgres;
use shard_manager::config::ClusterSettings;
use shard_manager::routing::{MapVersion, ShardId};
use shard_manager::servers::connection_url;

/// Empties `server`'s slot ownership as of `version`: how many slots it gave up, or
/// None when it had been told a newer version (left alone).
pub async fn disown(
    settings: &ClusterSettings,
    shard: ShardId,
    server: &str,
    version: MapVersion,
) -> Result<Option<u64>, MapError> {
    let fail = |reason: String| MapError::Shard {
        shard,
        server: server.to_owned(),
        reason,
    };
    let url = connection_url(&settings.database, server);
    let (mut client, connection) = connect_postgres(&url, &settings.database)
        .await
        .map_err(fail)?;
    let driver = tokio::spawn(connection);
    let outcome = async {
        let tx = client.transaction().await?;
        // This server alone: an old primary configured for synchronous replication has
        // no standby left, and its commit must not wait for one.
        tx.batch_execute("SET LOCAL synchronous_commit = local").await?;
        let told: Option<i64> = tx
            .query_opt("SELECT version FROM shardgate_map FOR UPDATE", &[])
            .await?
            .map(|r| r.get(0));
        if told.is_some_and(|t| t as u64 > version.0) {
            return Ok(None);
        }
        tx.execute(
            "SELECT pg_advisory_xact_lock(21319, slot) FROM (SELECT slot FROM shardgate_slots ORDER BY slot) AS s",
            &[],
        )
        .await?;
        let gone = tx.execute("DELETE FROM shardgate_slots", &[]).await?;
        tx.execute(
            "INSERT INTO shardgate_map (shard, version) VALUES ($1, $2)
             ON CONFLICT (singleton) DO UPDATE
                SET shard = excluded.shard, version = excluded.version, updated_at = now()",
            &[&(shard.0 as i32), &(version.0 as i64)],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(gone))
    }
    .await
    .map_err(|e: tokio_postgres::Error| fail(e.to_string()));
    drop(client);
    let _ = driver.await;
    outcome
}
