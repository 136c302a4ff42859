//! The target's side of a move's start: cache entries the target holds from an earlier
//! time it owned these slots are abandoned before it owns them again. Raising the
//! target's cache epoch abandons them; every gateway's reading of the old epoch expires
//! within a check and its timeout (`cache::epochs`), so the move waits that long before
//! going on (a small move takes well under that, and a move straight back would
//! otherwise let a gateway serve them). A crash while waiting resumes in the same
//! phase, which raises and waits again.

use std::time::Duration;

use super::shard_conn::ShardConn;
use super::MoveError;
use shard_manager::config::ReplicationSettings;

/// Raises the target's cache epoch, then waits until no gateway reads the old one.
pub async fn abandon(
    target: &ShardConn,
    replication: &ReplicationSettings,
) -> Result<(), MoveError> {
    target
        .client
        .execute("UPDATE shardgate_cache SET epoch = epoch + 1", &[])
        .await
        .map_err(target.fail("raising its cache epoch"))?;
    tokio::time::sleep(
        replication.check_interval() + Duration::from_millis(replication.check_timeout_ms),
    )
    .await;
    Ok(())
}
