//! Two shards of the test's own, for what must cross a failover (prepared transactions,
//! slot moves): shard 0 a synchronous pair (`pair`, ports 26700-26749) whose primary
//! the test kills and whose replica it promotes (the HA manager's step), shard 1 a
//! plain primary (`Pair::alone`, ports 26750-26799) that stays up. The same scratch
//! databases, seeded map (v1, term 1) and following `Cluster` as the other failover
//! tests (`harness`), and their lock.

use std::sync::Arc;

use shard_manager::live_map::ShardMap;
use shard_manager::{Cluster, ClusterSettings, ShardId, ShardKey};
use test_support::failover::harness::{self, Following, Scratch};
use test_support::private::pair::Pair;
use test_support::scratch::migrate;

pub struct TwoShards {
    /// Shard 0: primary and synchronous replica.
    pub pair: Arc<Pair>,
    /// Shard 1: a primary alone.
    pub plain: Pair,
    pub settings: ClusterSettings,
    pub following: Following,
    _scratch: Scratch,
    _alone: tokio::sync::MutexGuard<'static, ()>,
}

/// Both shards up (started side by side), migrated, the map seeded and followed.
pub async fn start() -> (TwoShards, ShardMap) {
    let alone = harness::ONE_AT_A_TIME.lock().await;
    let mut settings = harness::settings();
    let user = settings.database.user.clone();
    let name = settings.database.dbname.clone();
    let (pair, plain) = tokio::task::spawn_blocking(move || {
        std::thread::scope(|s| {
            let pair = s.spawn(|| Pair::alone(&user, &name, "fo-ha", 26700..26750).with_replica());
            let plain = Pair::alone(&user, &name, "fo-plain", 26750..26800);
            (pair.join().expect("the pair starts"), plain)
        })
    })
    .await
    .unwrap();
    let mut second = settings.shards[0].clone();
    settings.shards[0].primary = pair.primary();
    settings.shards[0].replicas = vec![pair.replica()];
    second.primary = plain.primary();
    second.replicas = Vec::new();
    settings.shards.push(second);
    let scratch = Scratch(settings.clone());
    migrate(&settings, &plain.primary()).await;
    let init = harness::seed(&settings, &pair.primary()).await;
    let following = Following::start(&settings, &init);
    let shards = TwoShards {
        pair: Arc::new(pair),
        plain,
        settings,
        following,
        _scratch: scratch,
        _alone: alone,
    };
    (shards, init)
}

impl TwoShards {
    pub fn db(&self) -> &str {
        &self.settings.database.dbname
    }

    /// One query's text output on shard 0's primary, its replica (the new primary once
    /// promoted), or on shard 1.
    pub fn on_old(&self, sql: &str) -> String {
        self.pair.query(self.pair.primary_port, self.db(), sql)
    }

    pub fn on_new(&self, sql: &str) -> String {
        self.pair.query(self.pair.replica_port, self.db(), sql)
    }

    pub fn on_plain(&self, sql: &str) -> String {
        self.plain.query(self.plain.primary_port, self.db(), sql)
    }
}

/// The first id `prefix-N` whose key routes to `shard` under `cluster`'s map.
pub fn id_on(cluster: &Cluster, shard: u32, prefix: &str) -> String {
    (0..10_000)
        .map(|n| format!("{prefix}-{n}"))
        .find(|id| {
            let key = ShardKey::parse(id).expect("a key");
            cluster.router().route(key).expect("routes").shard() == ShardId(shard)
        })
        .expect("an id on the shard")
}
