//! What the control plane's health monitor tells the request path, measured here once:
//! with no monitor running, no replica's lag is known and every read goes to a primary.
//! Each replica's replay position and its lag behind its primary are read through the
//! cluster's own servers, as the monitor reads them, and handed over with the calls the
//! monitor makes (`check_passed`, `set_lag`).

use shard_manager::servers::Lag;
use shard_manager::wire::{replay_wal, upkeep};
use shard_manager::{Cluster, Lsn};

/// Checks every replica of every shard once; panics if one does not answer or does not
/// qualify for reads afterwards.
pub async fn check_replicas(cluster: &Cluster) {
    let limits = &cluster.settings().replication;
    for shard in cluster.shards().iter() {
        let (in_recovery, written) = shard
            .primary
            .run(async |conn| upkeep::wal_position(conn).await)
            .await
            .expect("the primary's WAL position");
        assert!(!in_recovery, "{} is a standby", shard.primary.addr);
        let written = written.as_deref().and_then(Lsn::parse).expect("an LSN");
        shard.primary.check_passed(Some(written));
        for replica in &shard.replicas {
            let replayed = replica
                .run(async |conn| replay_wal(conn).await)
                .await
                .expect("the replica's replay position")
                .as_deref()
                .and_then(Lsn::parse)
                .expect("a replica replays");
            replica.check_passed(Some(replayed));
            let bytes = written.0.saturating_sub(replayed.0);
            replica.set_lag(Some(Lag { bytes, ms: 0 }));
            replica
                .qualification(limits)
                .unwrap_or_else(|why| panic!("{} does not take reads: {why}", replica.addr));
        }
    }
}
