//! What both failover tests set up the same way: settings for one private shard with
//! scratch databases, the metadata scratch database dropped however the test ends, the
//! shard migrated and the map seeded, and a `Cluster` that follows the map with the
//! health monitor and the failover watcher beside it, as in a gateway; the pair's
//! failover under load (kill, promotion by hand, writes resumed). Also one lock so the
//! tests (each kills servers and measures times) never run at once.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use control_plane::failover;
use control_plane::map::{change, Follower, Identity};
use control_plane::Monitor;
use shard_manager::live_map::ShardMap;
use shard_manager::{config, Cluster, ClusterSettings, ShardId};

use crate::failover::workload::Tally;
use crate::maintenance::maintenance;
use crate::private::pair::{Pair, Replication};
use crate::scratch::migrate;

/// Held by each failover test for its whole run.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One shard (whose servers the test sets) and scratch databases named `sgtest_fo_*`.
pub fn settings() -> ClusterSettings {
    let mut settings: ClusterSettings = config::load(None).expect("settings");
    let name = format!("sgtest_fo_{}", uuid::Uuid::new_v4().simple());
    settings.database.dbname = name.clone();
    settings.metadata.dbname = name;
    settings.database.pool_max_size = 4;
    settings.shards.truncate(1);
    settings.failover.check_ms = 100;
    settings.failover.write_wait_ms = 20_000;
    // The shared topology's administrator (`./setup.sh env admin`, `./setup.sh test`):
    // not these private servers' (their application role is a superuser), nor their
    // monitor (each test names its own as `ha_monitor`).
    settings.failover.ha_monitor_admin = None;
    settings.failover.admin_user = None;
    settings.failover.admin_password = None;
    settings.replication.check_interval_ms = 200;
    settings
}

/// Drops the metadata scratch database however the test ends.
pub use crate::scratch::MetaScratch as Scratch;

/// The shard's schema on `primary` (its scratch database exists there), the metadata
/// scratch database made, and the map seeded (v1, term 1) and told to the shard.
pub async fn seed(settings: &ClusterSettings, primary: &str) -> ShardMap {
    migrate(settings, primary).await;
    let name = &settings.metadata.dbname;
    maintenance(
        settings,
        &settings.metadata.address,
        &format!("CREATE DATABASE {name}"),
    )
    .await;
    change::init(settings).await.expect("init").map
}

/// A cluster as a gateway runs it: following the map, monitored, watched for failovers.
pub struct Following {
    pub cluster: Arc<Cluster>,
    _follower: Follower,
    _monitor: Monitor,
    _watcher: failover::Watcher,
}

impl Following {
    pub fn start(settings: &ClusterSettings, map: &ShardMap) -> Self {
        let cluster = Arc::new(Cluster::with_map(settings, map).expect("cluster"));
        Following {
            _follower: Follower::spawn(cluster.map().clone(), Identity::new("test:1".into())),
            _monitor: Monitor::spawn(cluster.clone()),
            _watcher: failover::Watcher::spawn(cluster.clone()),
            cluster,
        }
    }
}

/// One shard on a private pair whose replica is in `replication`, followed as a gateway
/// follows it: what the asynchronous-loss test and benchmark start alike. Holds
/// [`ONE_AT_A_TIME`] for as long as it lives; dropped, it stops following, drops the
/// metadata scratch database, then stops the pair.
pub struct OnPair {
    pub following: Following,
    pub settings: ClusterSettings,
    _scratch: Scratch,
    pub pair: Arc<Pair>,
    _alone: tokio::sync::MutexGuard<'static, ()>,
}

impl OnPair {
    /// The pair (`label`, ports in `ports`), the shard's settings naming it, the shard
    /// migrated and the map seeded, and the cluster following it.
    pub async fn start(label: &str, ports: Range<u16>, replication: Replication) -> Self {
        let alone = ONE_AT_A_TIME.lock().await;
        let mut settings = settings();
        let (user, name) = (&settings.database.user, &settings.database.dbname);
        let pair = Arc::new(Pair::alone(user, name, label, ports).with_replica_in(replication));
        settings.shards[0].primary = pair.primary();
        settings.shards[0].replicas = vec![pair.replica()];
        let scratch = Scratch(settings.clone());
        let init = seed(&settings, &pair.primary()).await;
        OnPair {
            following: Following::start(&settings, &init),
            settings,
            _scratch: scratch,
            pair,
            _alone: alone,
        }
    }
}

/// A benchmark's setting from the environment (`SHARDGATE_BENCH_ROUNDS`, ...), else
/// `default`.
pub fn bench_setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// When a [`fail_over`] killed the primary, promoted the replica, and saw writes resume.
pub struct FailedOver {
    pub killed: Instant,
    pub promoted: Instant,
    pub resumed: Instant,
}

/// With writers under way (their acknowledgements in `tally`): the pair's primary
/// killed (-9), its replica promoted a second later (the HA manager's step), then waits
/// until `cluster` routes to the new primary and 40 more writes were acknowledged.
pub async fn fail_over(pair: &Arc<Pair>, cluster: &Cluster, tally: &Tally) -> FailedOver {
    let acked_before_kill = tally.acked_count();
    assert!(
        acked_before_kill > 10,
        "writers under way: {acked_before_kill}"
    );
    let killed = Instant::now();
    let p = pair.clone();
    tokio::task::spawn_blocking(move || p.kill_primary())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let p = pair.clone();
    tokio::task::spawn_blocking(move || p.promote_replica())
        .await
        .unwrap();
    let promoted = Instant::now();
    loop {
        let n = tally.acked_count();
        let followed = cluster.shard(ShardId(0)).unwrap().primary.addr == pair.replica();
        if n >= acked_before_kill + 40 && followed {
            let resumed = Instant::now();
            return FailedOver {
                killed,
                promoted,
                resumed,
            };
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "writes did not resume within 30 s ({n} acknowledged)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
