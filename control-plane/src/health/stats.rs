//! What each shard holds: rows per logical table and bytes on disk, read from each
//! shard's replicas when one qualifies (these are counts, not point reads).

use std::collections::BTreeMap;

use futures_util::future::join_all;

use shard_manager::cluster::Cluster;
use shard_manager::routing::ShardId;
use shard_manager::wal::Consistency;
use shard_manager::wire::upkeep;

/// One shard's data, or why it could not be counted.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ShardData {
    #[schema(value_type = u32)]
    pub shard: ShardId,
    /// Rows per logical table.
    pub rows: BTreeMap<String, i64>,
    /// The records table with its indexes and TOAST.
    pub table_bytes: Option<i64>,
    /// The whole database on this shard.
    pub database_bytes: Option<i64>,
    /// Which role was counted (`replica` or `primary`).
    pub source: Option<String>,
    pub error: Option<String>,
}

/// Counts every shard of `cluster` at once.
pub async fn data_stats(cluster: &Cluster) -> Vec<ShardData> {
    let limits = &cluster.settings().replication;
    join_all(cluster.shards().iter().map(|shard| async move {
        let result = shard
            .read(Consistency::Eventual, limits, async |conn| {
                let rows = upkeep::table_counts(conn).await?;
                let bytes = upkeep::disk_bytes(conn).await?;
                Ok((rows, bytes))
            })
            .await;
        match result {
            Ok(served) => {
                let (rows, (table, database)) = served.value;
                ShardData {
                    shard: shard.id,
                    rows: rows.into_iter().collect(),
                    table_bytes: Some(table),
                    database_bytes: Some(database),
                    source: Some(served.role.as_str().to_owned()),
                    error: None,
                }
            }
            Err(e) => ShardData {
                shard: shard.id,
                rows: BTreeMap::new(),
                table_bytes: None,
                database_bytes: None,
                source: None,
                error: Some(e.to_string()),
            },
        }
    }))
    .await
}
