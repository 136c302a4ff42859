//! What the tests on pg_auto_failover set up alike: the failover tests' lock, a private
//! formation (`autoctl`), settings naming its nodes (node 0 the primary) and its monitor,
//! the scratch metadata database, the seeded map and a following `Cluster`. None, with a
//! loud message, only when pg_autoctl is not installed and `SHARDGATE_REQUIRE_HA` is
//! unset (`./setup.sh test` installs it and sets it, so CI always runs them).

use std::path::PathBuf;
use std::sync::Arc;

use shard_manager::live_map::ShardMap;
use shard_manager::ClusterSettings;

use crate::autoctl::{self, Formation};
use crate::harness::{self, Following, Scratch};

pub struct HaShard {
    pub formation: Arc<Formation>,
    pub settings: ClusterSettings,
    /// The map as seeded (v1, term 1).
    pub init: ShardMap,
    pub following: Following,
    _scratch: Scratch,
    _alone: tokio::sync::MutexGuard<'static, ()>,
}

/// pg_autoctl for the test `what`; None, loudly, when it is not installed and
/// `SHARDGATE_REQUIRE_HA` is unset (a failure when it is set).
pub fn pg_autoctl(what: &str) -> Option<PathBuf> {
    let found = autoctl::installed();
    if found.is_none() {
        if std::env::var_os("SHARDGATE_REQUIRE_HA").is_some() {
            panic!("SHARDGATE_REQUIRE_HA is set but pg_autoctl is not installed (apt-get install postgresql-15-auto-failover pg-auto-failover-cli, or ./setup.sh test)");
        }
        eprintln!(
            "\n!!!!!!!!!!\n!!! SKIPPED: pg_autoctl is not installed, so {what} was NOT \
             tested.\n!!! ./setup.sh test installs it (or apt-get install \
             postgresql-15-auto-failover pg-auto-failover-cli); set SHARDGATE_REQUIRE_HA=1 \
             to make this a failure.\n!!!!!!!!!!\n"
        );
    }
    found
}

/// The shard on its formation, for the test `what`.
pub async fn start(what: &str) -> Option<HaShard> {
    let pg_autoctl = pg_autoctl(what)?;
    let alone = harness::ONE_AT_A_TIME.lock().await;
    let mut settings = harness::settings();
    let name = settings.database.dbname.clone();
    let user = settings.database.user.clone();
    let formation =
        tokio::task::spawn_blocking(move || Arc::new(Formation::start(pg_autoctl, &user, &name)))
            .await
            .unwrap();
    settings.shards[0].primary = formation.addr(0);
    settings.shards[0].replicas = vec![formation.addr(1)];
    settings.failover.ha_monitor = Some(formation.monitor_uri());
    let scratch = Scratch(settings.clone());
    let init = harness::seed(&settings, &formation.addr(0)).await;
    let following = Following::start(&settings, &init);
    Some(HaShard {
        formation,
        settings,
        init,
        following,
        _scratch: scratch,
        _alone: alone,
    })
}
