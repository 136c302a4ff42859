//! What the tests on pg_auto_failover set up alike: the failover tests' lock, a private
//! formation (`autoctl`), settings naming its nodes (node 0 the primary) and its monitor,
//! the scratch metadata database, the seeded map and a following `Cluster` (and a plain
//! primary as shard 1 when asked). None, with a
//! loud message, only when pg_autoctl is not installed and `SHARDGATE_REQUIRE_HA` is
//! unset (`./setup.sh test` installs it and sets it, so CI always runs them). Also what
//! the failover tests on it check alike: roles, the promotion, the map after a failover, every
//! acknowledged write on the new primary, the old node replaying it.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use control_plane::map::meta;
use shard_manager::live_map::ShardMap;
use shard_manager::{Cluster, ClusterSettings, MapVersion, ShardId};
use tokio::task::JoinHandle;
use tokio_postgres::Client;

use crate::failover::harness::{self, Following, Scratch};
use crate::failover::workload::{
    count_sql, lost_and_twice, parse_versions, stored_versions_sql, write_before, Acked, Tally,
};
use crate::private::autoctl::{self, Formation};
use crate::private::haproxy;
use crate::private::pair::Pair;
use crate::private::placement::Placement;
use crate::scratch::migrate;

pub struct HaShard {
    pub formation: Arc<Formation>,
    pub settings: ClusterSettings,
    /// The map as seeded (v1, term 1).
    pub init: ShardMap,
    pub following: Following,
    /// Shard 1, a primary alone, when asked for ([`start_beside`]).
    pub plain: Option<Pair>,
    _scratch: Scratch,
    _alone: tokio::sync::MutexGuard<'static, ()>,
}

/// The shard on its formation (on loopback), for the test `what`.
pub async fn start(what: &str) -> Option<HaShard> {
    start_at(what, Placement::loopback()).await
}

/// pg_autoctl for the test `what`; None, loudly, when it is not installed and
/// `SHARDGATE_REQUIRE_HA` is unset (a failure when it is set).
pub fn pg_autoctl(what: &str) -> Option<PathBuf> {
    let packages = "postgresql-15-auto-failover pg-auto-failover-cli";
    required(what, "pg_autoctl", autoctl::installed(), packages)
}

/// HAProxy for the test `what`, as [`pg_autoctl`] is found.
pub fn haproxy(what: &str) -> Option<PathBuf> {
    required(what, "haproxy", haproxy::installed(), "haproxy")
}

/// `found`, the program `name` (Debian's `packages`) for the test `what`; None, loudly,
/// when it is not installed and `SHARDGATE_REQUIRE_HA` is unset, a failure when it is.
fn required(what: &str, name: &str, found: Option<PathBuf>, packages: &str) -> Option<PathBuf> {
    if found.is_none() {
        if std::env::var_os("SHARDGATE_REQUIRE_HA").is_some() {
            panic!("SHARDGATE_REQUIRE_HA is set but {name} is not installed (apt-get install {packages}, or ./setup.sh test)");
        }
        eprintln!(
            "\n!!!!!!!!!!\n!!! SKIPPED: {name} is not installed, so {what} was NOT \
             tested.\n!!! ./setup.sh test installs it (or apt-get install {packages}); set \
             SHARDGATE_REQUIRE_HA=1 to make this a failure.\n!!!!!!!!!!\n"
        );
    }
    found
}

/// The shard on its formation placed as `place` says, for the test `what`.
pub async fn start_at(what: &str, place: Placement) -> Option<HaShard> {
    start_beside(what, place, "", None).await
}

/// As [`start_at`], the formation started with `conf` ([`Formation::start_with`]), and
/// a plain primary as shard 1 when `plain` gives its ports (`Pair::alone`, started
/// beside the formation, migrated), as `two_shards` has one.
pub async fn start_beside(
    what: &str,
    place: Placement,
    conf: &str,
    plain: Option<Range<u16>>,
) -> Option<HaShard> {
    let pg_autoctl = pg_autoctl(what)?;
    let alone = harness::ONE_AT_A_TIME.lock().await;
    let mut settings = harness::settings();
    let name = settings.database.dbname.clone();
    let user = settings.database.user.clone();
    let conf = conf.to_owned();
    let (formation, plain) = tokio::task::spawn_blocking(move || {
        std::thread::scope(|s| {
            let (u, n) = (&user, &name);
            let plain = plain.map(|ports| s.spawn(move || Pair::alone(u, n, "fo-plain", ports)));
            let formation = Arc::new(Formation::start_with(pg_autoctl, u, n, place, &conf));
            let plain = plain.map(|p| p.join().expect("the plain primary starts"));
            (formation, plain)
        })
    })
    .await
    .unwrap();
    let mut second = settings.shards[0].clone();
    settings.shards[0].primary = formation.addr(0);
    settings.shards[0].replicas = vec![formation.addr(1)];
    settings.failover.ha_monitor = Some(formation.monitor_uri());
    if let Some(plain) = &plain {
        second.primary = plain.primary();
        second.replicas = Vec::new();
        settings.shards.push(second);
    }
    let scratch = Scratch(settings.clone());
    if let Some(plain) = &plain {
        migrate(&settings, &plain.primary()).await;
    }
    let init = harness::seed(&settings, &formation.addr(0)).await;
    let following = Following::start(&settings, &init);
    Some(HaShard {
        formation,
        settings,
        init,
        following,
        plain,
        _scratch: scratch,
        _alone: alone,
    })
}

/// What a failover test starts from, its shard up: records written before the failure
/// (the reader reads them throughout), and a connection to node 1, to see it promoted.
pub struct Before {
    pub acked: Vec<Acked>,
    pub ids: Vec<String>,
    pub standby: Client,
}

impl HaShard {
    /// Checks the map (v1, term 1) and pg_auto_failover's synchronous replication,
    /// writes 20 records and connects to node 1 (in recovery).
    pub async fn before_failure(&self) -> Before {
        assert_eq!(
            (self.init.version, self.init.shards[0].term),
            (MapVersion(1), 1)
        );
        let acked = write_before(&self.following.cluster, 20).await;
        let ids = acked.iter().map(|a| a.id.clone()).collect();
        self.assert_synchronous();
        let standby = connect(&self.settings, &self.formation.addr(1)).await;
        assert_eq!(in_recovery(&standby).await, Some(true));
        Before {
            acked,
            ids,
            standby,
        }
    }
}

impl HaShard {
    /// Node 0's commits wait for node 1: pg_auto_failover's synchronous replication.
    pub fn assert_synchronous(&self) {
        assert_eq!(
            self.formation
                .query(0, "postgres", "SHOW synchronous_standby_names"),
            "ANY 1 (pgautofailover_standby_2)",
            "pg_auto_failover's synchronous replication"
        );
    }

    /// While node 0 comes back (its keeper started again, or its link healed): watches
    /// its role, waits up to `within` until the monitor has it a secondary and node 1
    /// the primary, lets the load acknowledge 40 more writes, then stops it. Returns
    /// when node 0 was a secondary again, and whether it was ever seen writable
    /// meanwhile (split brain).
    pub async fn rejoin(
        &self,
        tally: &Tally,
        stop: &AtomicBool,
        within: Duration,
    ) -> (Instant, bool) {
        let (seen_writable, watch) = watch_writable(&self.settings, &self.formation.addr(0));
        let f = self.formation.clone();
        tokio::task::spawn_blocking(move || f.wait_states(&["secondary", "primary"], within))
            .await
            .unwrap();
        let rejoined = Instant::now();
        let n = tally.acked_count();
        while tally.acked_count() < n + 40 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.store(true, Ordering::Relaxed);
        watch.abort();
        (rejoined, seen_writable.load(Ordering::Relaxed))
    }
}

/// When each step after node 0's link was cut happened ([`HaShard::over_the_cut`]).
pub struct CutOver {
    /// Node 0 stopped its PostgreSQL by itself (asked on its own host).
    pub stopped: Instant,
    /// The monitor promoted node 1.
    pub promoted: Instant,
    /// The cluster routes shard 0 to node 1.
    pub followed: Instant,
    /// 40 more writes than before the cut were acknowledged, after it followed.
    pub resumed: Instant,
}

impl HaShard {
    /// After node 0's link was cut at `cut` (with `acked_before_cut` writes acknowledged
    /// then): waits until the old primary stopped its PostgreSQL by itself, the monitor
    /// promoted the secondary (`standby`, connected to it), the cluster followed and
    /// writes resumed, nobody doing any of it by hand. Panics `give_up` after the cut,
    /// with the formation's state and the cut-off keeper's last lines.
    pub async fn over_the_cut(
        &self,
        cut: Instant,
        standby: &Client,
        acked_before_cut: usize,
        tally: &Tally,
        give_up: Duration,
    ) -> CutOver {
        let (formation, cluster) = (&self.formation, &self.following.cluster);
        let new = formation.addr(1);
        let (mut stopped, mut promoted, mut followed, mut resumed) = (None, None, None, None);
        loop {
            let f = formation.clone();
            let accepts = tokio::task::spawn_blocking(move || f.accepts_locally(0))
                .await
                .expect("asked on the cut-off host");
            let now = Instant::now();
            if stopped.is_none() && !accepts {
                stopped = Some(now);
                eprintln!(
                    "the cut-off node, {:?} after the cut:\n{}",
                    now - cut,
                    formation.local_state(0)
                );
            }
            if promoted.is_none() && in_recovery(standby).await == Some(false) {
                promoted = Some(now);
            }
            if followed.is_none() && cluster.shard(ShardId(0)).expect("shard 0").primary.addr == new
            {
                followed = Some(now);
            }
            if resumed.is_none()
                && followed.is_some()
                && tally.acked_count() >= acked_before_cut + 40
            {
                resumed = Some(now);
            }
            if let (Some(stopped), Some(promoted), Some(followed), Some(resumed)) =
                (stopped, promoted, followed, resumed)
            {
                return CutOver {
                    stopped,
                    promoted,
                    followed,
                    resumed,
                };
            }
            assert!(
                cut.elapsed() < give_up,
                "within {give_up:?} of the cut: old primary stopped {stopped:?}, secondary \
                 promoted {promoted:?}, followed {followed:?}, writes resumed {resumed:?} ({} \
                 acknowledged):\n{}\nthe cut-off node's keeper, last lines:\n{}",
                tally.acked_count(),
                formation.show_state(),
                formation.log_tail(0, 40)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Waits until node 1 (`standby`, connected to it) is promoted by the monitor, nobody
/// else: when it was seen writable. Panics with the formation's state 60 s after `killed`.
pub async fn promoted(formation: &Formation, standby: &Client, killed: Instant) -> Instant {
    loop {
        if in_recovery(standby).await == Some(false) {
            return Instant::now();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "the monitor did not promote the secondary within 60 s:\n{}",
            formation.show_state()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The failure the load runs into: 800 ms of load (more than 10 writes acknowledged),
/// then node 0's whole machine killed (`kill -9` of its keeper and PostgreSQL), then
/// the wait for the monitor, nobody else, to promote node 1 (`standby`). Returns the
/// writes acknowledged before the kill, when it was killed and when it was promoted.
pub async fn kill_primary_under(
    formation: &Arc<Formation>,
    standby: &Client,
    tally: &Tally,
) -> (usize, Instant, Instant) {
    tokio::time::sleep(Duration::from_millis(800)).await;
    let acked_before_kill = tally.acked_count();
    assert!(
        acked_before_kill > 10,
        "writers under way: {acked_before_kill}"
    );
    let killed = Instant::now();
    let f = formation.clone();
    tokio::task::spawn_blocking(move || f.kill_node(0))
        .await
        .unwrap();
    let promoted = promoted(formation, standby, killed).await;
    (acked_before_kill, killed, promoted)
}

/// Waits until the load has 40 more writes acknowledged than before the kill and
/// `followed` holds (the gateway has learnt the failover its own way); when that was.
/// Fails after 60 s from the kill with what `state` then tells.
pub async fn writes_resumed(
    tally: &Tally,
    acked_before_kill: usize,
    killed: Instant,
    followed: impl Fn() -> bool,
    state: impl Fn() -> String,
) -> Instant {
    loop {
        let n = tally.acked_count();
        if n >= acked_before_kill + 40 && followed() {
            return Instant::now();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "writes did not resume within 60 s: {n} acknowledged ({acked_before_kill} before the kill)\n{}",
            state()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// No read failed while the load ran, and it read.
pub fn assert_reads_served(tally: &Tally) {
    assert_eq!(
        tally.reads_failed.load(Ordering::Relaxed),
        0,
        "reads failed during the failover"
    );
    assert!(tally.reads_served.load(Ordering::Relaxed) > 50);
}

/// A connection to `addr`'s scratch database, to ask it its role.
pub async fn connect(settings: &ClusterSettings, addr: &str) -> Client {
    let url = shard_manager::servers::connection_url(&settings.database, addr);
    let (client, conn) = control_plane::postgres::connect(&url, &settings.database)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    tokio::spawn(conn);
    client
}

/// `pg_is_in_recovery()`, or None when the server did not answer.
pub async fn in_recovery(client: &Client) -> Option<bool> {
    let row = client.query_one("SELECT pg_is_in_recovery()", &[]).await;
    row.ok().map(|r| r.get(0))
}

/// Watches `addr`'s role for up to 60 s (until aborted), connecting again whenever it
/// does not answer: the flag is raised if it is ever seen writable (split brain while
/// an old primary comes back).
fn watch_writable(settings: &ClusterSettings, addr: &str) -> (Arc<AtomicBool>, JoinHandle<()>) {
    let seen = Arc::new(AtomicBool::new(false));
    let (flag, settings, addr) = (seen.clone(), settings.clone(), addr.to_owned());
    let watch = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let url = shard_manager::servers::connection_url(&settings.database, &addr);
            if let Ok((c, conn)) = control_plane::postgres::connect(&url, &settings.database).await
            {
                tokio::spawn(conn);
                while let Some(r) = in_recovery(&c).await {
                    if !r {
                        flag.store(true, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    (seen, watch)
}

/// The map names the promoted node `new`, with `old` its replica, one term later (as
/// does `cluster`'s view), and its history's newest line is the failover.
pub async fn assert_failed_over(
    settings: &ClusterSettings,
    cluster: &Cluster,
    old: &str,
    new: &str,
) {
    let mut meta_conn = meta::connect(settings).await.expect("metadata");
    let map = meta::load(&mut meta_conn.client).await.unwrap().unwrap();
    assert_eq!(map.version, MapVersion(2));
    assert_eq!(map.shards[0].primary, new);
    assert_eq!(map.shards[0].replicas, vec![old.to_owned()]);
    assert_eq!(map.shards[0].term, 2);
    assert_eq!(cluster.map().term(0), 2, "the gateway's view of the term");
    let history = meta::history_lines(&meta_conn.client, 5).await.unwrap();
    assert_eq!(history[0].action, "failover");
    assert!(
        history[0]
            .summary
            .contains(&format!("from {old} to {new}, term 2")),
        "{}",
        history[0].summary
    );
}

/// Every write the load saw acknowledged (and `before`) is on node `node` of the
/// formation, once: each single write at the version its acknowledgement gave, every
/// record of each acknowledged bulk write present.
pub fn assert_acknowledged_on(
    formation: &Formation,
    node: usize,
    name: &str,
    tally: &Tally,
    before: &[Acked],
) {
    let expected = tally.expected(before);
    let sql = stored_versions_sql(&expected);
    let stored = parse_versions(&formation.query(node, name, &sql));
    let (lost, twice) = lost_and_twice(&expected, &stored);
    let bulk = tally.acked_bulk.lock().unwrap().clone();
    assert!(bulk.len() > 30, "bulk writes under way: {}", bulk.len());
    let present = formation.query(node, name, &count_sql(&bulk));
    eprintln!(
        "acknowledged {} (+{} by bulk writes, {present} present): lost {lost}, applied twice {twice}",
        expected.len(),
        bulk.len()
    );
    assert_eq!(
        (lost, twice),
        (0, 0),
        "acknowledged writes lost or applied twice"
    );
    assert_eq!(stored, expected);
    assert_eq!(
        present,
        bulk.len().to_string(),
        "acknowledged bulk records lost"
    );
}

/// Node `secondary`, a secondary again, holds exactly what node `primary` holds once it
/// has replayed (within 10 s): nothing was written there alone.
pub async fn assert_replayed(formation: &Formation, secondary: usize, primary: usize, name: &str) {
    assert_eq!(
        formation.query(secondary, "postgres", "SELECT pg_is_in_recovery()"),
        "t"
    );
    let all = "SELECT id || ':' || version FROM records ORDER BY id";
    let on_primary = formation.query(primary, name, all);
    let started = Instant::now();
    loop {
        let on_secondary = formation.query(secondary, name, all);
        if on_secondary == on_primary {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the old node, a secondary again, differs from the new primary: {} rows against {}",
            on_secondary.lines().count(),
            on_primary.lines().count()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
