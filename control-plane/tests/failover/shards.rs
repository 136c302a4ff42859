//! The two shards a test across a failover runs on, whoever promotes: shard 0 fails
//! over, shard 1 (a plain primary) stays up. Either a synchronous pair
//! (`two_shards`), its primary killed and its replica promoted by the test a second
//! later (the HA manager's step, by hand), or a private pg_auto_failover formation
//! (`ha_shard`), its primary node's whole machine killed and its secondary promoted by
//! the monitor, nobody else. The scenarios (`prepared_across_failover`,
//! `move_across_failover`) are written once against [`Shards`] and run on both.

use std::sync::Arc;
use std::time::Instant;

use shard_manager::{Cluster, ClusterSettings};
use test_support::failover::ha_shard::{self, HaShard};

use crate::two_shards::TwoShards;

/// Kills shard 0's primary (blocking), however the test runs it.
pub type Kill = Arc<dyn Fn() + Send + Sync>;

/// The two shards as a test runs them: shard 0 fails over, shard 1 stays up.
pub trait Shards {
    fn cluster(&self) -> &Arc<Cluster>;
    fn settings(&self) -> &ClusterSettings;
    /// What kills shard 0's primary.
    fn kill(&self) -> Kill;
    /// Once shard 0's primary was killed (at `killed`): its replica promoted, by the
    /// test or by the HA manager (waited for). When it was.
    async fn promoted(&self, killed: Instant) -> Instant;
    /// Shard 0's primary and the replica promoted in its place.
    fn old_new(&self) -> (String, String);
    /// One query's text output on shard 0's first primary, on its promoted replica, or
    /// on shard 1.
    fn on_old(&self, sql: &str) -> String;
    fn on_new(&self, sql: &str) -> String;
    fn on_plain(&self, sql: &str) -> String;
}

impl Shards for TwoShards {
    fn cluster(&self) -> &Arc<Cluster> {
        &self.following.cluster
    }
    fn settings(&self) -> &ClusterSettings {
        &self.settings
    }
    fn kill(&self) -> Kill {
        let pair = self.pair.clone();
        Arc::new(move || pair.kill_primary())
    }
    /// The HA manager's step by hand, a second after the kill.
    async fn promoted(&self, killed: Instant) -> Instant {
        tokio::time::sleep_until((killed + std::time::Duration::from_secs(1)).into()).await;
        let p = self.pair.clone();
        tokio::task::spawn_blocking(move || p.promote_replica())
            .await
            .unwrap();
        Instant::now()
    }
    fn old_new(&self) -> (String, String) {
        (self.pair.primary(), self.pair.replica())
    }
    fn on_old(&self, sql: &str) -> String {
        TwoShards::on_old(self, sql)
    }
    fn on_new(&self, sql: &str) -> String {
        TwoShards::on_new(self, sql)
    }
    fn on_plain(&self, sql: &str) -> String {
        TwoShards::on_plain(self, sql)
    }
}

/// Shard 0 on a formation (node 0 its primary, node 1 its secondary), shard 1 the
/// plain primary `ha_shard::start_beside` was asked for.
impl Shards for HaShard {
    fn cluster(&self) -> &Arc<Cluster> {
        &self.following.cluster
    }
    fn settings(&self) -> &ClusterSettings {
        &self.settings
    }
    /// Node 0's whole machine: its keeper and its PostgreSQL.
    fn kill(&self) -> Kill {
        let formation = self.formation.clone();
        Arc::new(move || formation.kill_node(0))
    }
    /// Nobody but the monitor promotes: waits until node 1 answers out of recovery.
    async fn promoted(&self, killed: Instant) -> Instant {
        let standby = ha_shard::connect(&self.settings, &self.formation.addr(1)).await;
        ha_shard::promoted(&self.formation, &standby, killed).await
    }
    fn old_new(&self) -> (String, String) {
        (self.formation.addr(0), self.formation.addr(1))
    }
    fn on_old(&self, sql: &str) -> String {
        self.formation.query(0, &self.settings.database.dbname, sql)
    }
    fn on_new(&self, sql: &str) -> String {
        self.formation.query(1, &self.settings.database.dbname, sql)
    }
    fn on_plain(&self, sql: &str) -> String {
        let plain = self.plain.as_ref().expect("shard 1");
        plain.query(plain.primary_port, &self.settings.database.dbname, sql)
    }
}
