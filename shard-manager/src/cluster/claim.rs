//! A write's idempotency key claimed before anything is written
//! (`store::statements::CLAIM`): on the shard that owns the key's home slot, in a transaction of its
//! own. The same key sent with another request is refused (422) whichever shards the
//! two requests write to, and a batch is refused whole, before any shard writes.
//!
//! Why a claim at a home slot: the writes' own entries live with their records (so a
//! write and its entry commit together, and move with their slots), which puts two
//! requests with one key on different shards when their records differ. Asking every
//! shard instead costs a round trip to each and still races; the home gives the key one
//! place, arbitrated by its primary key, at the cost of one more round trip for writes
//! that carry a key (writes without one do not pay it).

use super::shard::Shard;
use super::Cluster;
use crate::error::ClusterError;
use crate::routing::RoutedKey;
use crate::store::IdempotencyKey;

impl Cluster {
    /// One attempt at claiming the idempotency key at `home` (see `operations`' `claim_key`).
    pub(super) async fn claim_once(
        &self,
        home: &RoutedKey,
        idempotency: &IdempotencyKey,
    ) -> Result<(), ClusterError> {
        let owned = self.shard_of(home)?;
        let shard: &Shard = &owned;
        shard.ready_for_writes()?;
        let slot = home.slot().0 as i32;
        let ours = shard
            .primary
            .run_write_as("claim idempotency key", async |conn| {
                crate::wire::claim(conn, idempotency, slot).await
            })
            .await
            .map_err(|failure| failure.into_error())?;
        match ours {
            true => Ok(()),
            false => Err(ClusterError::KeyReused { shard: shard.id }),
        }
    }
}
