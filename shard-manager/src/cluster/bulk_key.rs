//! A bulk write's idempotency key, checked on every shard the batch touches before
//! any is written: a key sent before with a different batch is refused whole (422),
//! rather than written on the shards that had not seen it.

use std::collections::BTreeSet;

use futures_util::future::join_all;

use super::bulk::BulkItem;
use super::Cluster;
use crate::error::ClusterError;
use crate::routing::ShardId;
use crate::store::{self, Remember};

impl Cluster {
    /// `Err(KeyReused)` when a shard of the batch holds the key for another request.
    /// A shard that cannot be asked is left to the write itself, which checks again.
    pub(super) async fn check_bulk_key(
        &self,
        items: &[BulkItem],
        remember: &Remember,
    ) -> Result<(), ClusterError> {
        let shards: BTreeSet<ShardId> = items.iter().map(|i| i.key.shard()).collect();
        let asks = shards.into_iter().map(|id| async move {
            let Ok(shard) = self.shard(id) else {
                return Ok(());
            };
            let found = shard
                .primary
                .run(async |conn| store::remembered_fingerprint(conn, remember).await)
                .await;
            match found {
                Ok(Some(print)) if print != remember.fingerprint => {
                    Err(ClusterError::KeyReused { shard: id })
                }
                _ => Ok(()),
            }
        });
        join_all(asks).await.into_iter().collect()
    }
}
