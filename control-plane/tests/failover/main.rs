//! A shard survives losing its primary, with no gateway started: the request path
//! (`Cluster`) follows the map through the control plane's follower, the health
//! monitor and the failover watcher run beside it, as in a gateway.
//!
//! The shard is a private pair (`pair`): a primary with a synchronous streaming
//! replica. Two writers and a reader run while the primary's postmaster is killed
//! (kill -9) and its replica promoted (`pg_ctl promote`, the HA manager's step). Then:
//! writes resume on the new primary, every acknowledged write is there exactly once,
//! no read failed, and the map names the new primary at term 2 with a `failover`
//! history line. The old primary is then started again writable (split brain, on
//! purpose): the watcher fences it, and a gateway still routing with the old map has
//! its write refused there (SG001) and nothing written.
//!
//! Needs the metadata server of `./setup.sh up` (a scratch database there, dropped at
//! the end) and PostgreSQL's programs: `flock -s /tmp/sg-cluster.lock cargo test -p
//! control-plane --test failover`, with the environment of `eval "$(./setup.sh env)"`.

#[path = "../common/mod.rs"]
mod common;
mod pair;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use control_plane::failover;
use control_plane::map::{change, meta, Follower, Identity};
use control_plane::Monitor;
use shard_manager::wal::Consistency;
use shard_manager::{
    config, BulkItem, Cluster, ClusterError, ClusterSettings, Document, MapVersion, RecordId,
    ShardId, ShardKey,
};

use common::{maintenance, migrate};
use pair::Pair;

/// One shard: the pair. A scratch database on the pair and on the metadata server.
fn settings(pair_user: &mut String) -> ClusterSettings {
    let mut settings: ClusterSettings = config::load(None).expect("settings");
    let name = format!("sgtest_fo_{}", uuid::Uuid::new_v4().simple());
    settings.database.dbname = name.clone();
    settings.metadata.dbname = name;
    settings.database.pool_max_size = 4;
    settings.shards.truncate(1);
    settings.failover.check_ms = 100;
    settings.failover.write_wait_ms = 20_000;
    settings.replication.check_interval_ms = 200;
    *pair_user = settings.database.user.clone();
    settings
}

/// Drops the metadata scratch database however the test ends.
struct Scratch(ClusterSettings);

impl Drop for Scratch {
    fn drop(&mut self) {
        let settings = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async {
                let drop = format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    settings.metadata.dbname
                );
                maintenance(&settings, &settings.metadata.address, &drop).await;
            })
        })
        .join();
    }
}

fn doc(n: u64) -> Document {
    Document::parse(serde_json::json!({"n": n})).expect("a document")
}

/// Writes `name-0`, `name-1`, ... until `stop`, recording each acknowledged id;
/// failures are counted, not retried (a write whose connection died after the send
/// is never re-sent: it may have committed).
async fn writer(
    cluster: &Cluster,
    name: &'static str,
    stop: &AtomicBool,
    acked: &Mutex<Vec<(String, i64)>>,
    failed: &AtomicU64,
) {
    let table = cluster.tables().parse("users").expect("users");
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let id = format!("{name}-{i}");
        let key = cluster
            .router()
            .route(ShardKey::parse(&id).expect("a key"))
            .expect("routes");
        match cluster
            .write(&table, &key, RecordId::parse(&id).unwrap(), doc(i), None)
            .await
        {
            Ok(w) => acked.lock().unwrap().push((id, w.upserted.version)),
            Err(e) => {
                eprintln!("write {id}: {e}");
                failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Writes batches of three (`name-i-0..2`) with bulk writes until `stop`, recording
/// the ids of every batch acknowledged whole.
async fn bulk_writer(
    cluster: &Cluster,
    name: &'static str,
    stop: &AtomicBool,
    acked: &Mutex<Vec<String>>,
    failed: &AtomicU64,
) {
    let table = cluster.tables().parse("users").expect("users");
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let ids: Vec<String> = (0..3).map(|j| format!("{name}-{i}-{j}")).collect();
        let items = ids
            .iter()
            .enumerate()
            .map(|(index, id)| BulkItem {
                index,
                key: cluster
                    .router()
                    .route(ShardKey::parse(id).expect("a key"))
                    .expect("routes"),
                id: RecordId::parse(id).unwrap(),
                data: doc(i),
            })
            .collect();
        match cluster.bulk_write(&table, items, None).await {
            Ok(out) if out.failed.is_empty() && out.written() == 3 => {
                acked.lock().unwrap().extend(ids)
            }
            other => {
                eprintln!("bulk {name}-{i}: {:?}", other.map(|o| o.failed));
                failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_whose_primary_is_killed_follows_its_promoted_replica_and_fences_the_old_one() {
    let mut user = String::new();
    let mut settings = settings(&mut user);
    let name = settings.database.dbname.clone();
    let t0 = Instant::now();
    let pair = Arc::new(Pair::start(&user, &name));
    eprintln!("[{:?}] the pair is up", t0.elapsed());
    settings.shards[0].primary = pair.primary();
    settings.shards[0].replicas = vec![pair.replica()];
    let _scratch = Scratch(settings.clone());
    migrate(&settings, &pair.primary()).await;
    maintenance(
        &settings,
        &settings.metadata.address,
        &format!("CREATE DATABASE {name}"),
    )
    .await;
    let init = change::init(&settings).await.expect("init");
    eprintln!("[{:?}] the map is seeded", t0.elapsed());
    assert_eq!(init.map.version, MapVersion(1));
    assert_eq!(init.map.shards[0].term, 1);

    let cluster = Arc::new(Cluster::with_map(&settings, &init.map).expect("cluster"));
    let _follower = Follower::spawn(cluster.map().clone(), Identity::new("test:1".into()));
    let _monitor = Monitor::spawn(cluster.clone());
    let _watcher = failover::Watcher::spawn(cluster.clone());
    let table = cluster.tables().parse("users").expect("users");

    // Records the reader reads throughout (acknowledged = on the synchronous replica).
    let mut before = Vec::new();
    let mut before_versions = Vec::new();
    for i in 0..20u64 {
        let id = format!("before-{i}");
        let key = cluster
            .router()
            .route(ShardKey::parse(&id).unwrap())
            .unwrap();
        let w = cluster
            .write(&table, &key, RecordId::parse(&id).unwrap(), doc(i), None)
            .await
            .expect("a write before the failure");
        before_versions.push((id.clone(), w.upserted.version));
        before.push(id);
    }

    eprintln!("[{:?}] 20 records written", t0.elapsed());
    let stop = AtomicBool::new(false);
    let acked = Mutex::new(Vec::new());
    let failed = AtomicU64::new(0);
    let reads_failed = AtomicU64::new(0);
    let reads_served = AtomicU64::new(0);
    // Writers and the reader run in this task beside the failure (joined, not spawned).
    let reader = async {
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            let id = &before[i % before.len()];
            let key = cluster
                .router()
                .route(ShardKey::parse(id).unwrap())
                .unwrap();
            let id = RecordId::parse(id).unwrap();
            match cluster.read(&table, &key, &id, Consistency::Eventual).await {
                Ok(served) if served.value.is_some() => {
                    reads_served.fetch_add(1, Ordering::Relaxed);
                }
                other => {
                    eprintln!("read {id:?}: {:?}", other.map(|s| s.value.is_some()));
                    reads_failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            i += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let failure = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let acked_before_kill = acked.lock().unwrap().len();
        assert!(
            acked_before_kill > 10,
            "writers under way: {acked_before_kill}"
        );

        // The primary dies; a second later its HA manager promotes the replica.
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

        // Writes resume on the new primary.
        let resumed_at = loop {
            let n = acked.lock().unwrap().len();
            let followed = cluster.shard(ShardId(0)).unwrap().primary.addr == pair.replica();
            if n >= acked_before_kill + 40 && followed {
                break Instant::now();
            }
            assert!(
                killed.elapsed() < Duration::from_secs(30),
                "writes did not resume within 30 s ({n} acknowledged)"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        stop.store(true, Ordering::Relaxed);
        (killed, promoted, resumed_at)
    };
    let acked_bulk = Mutex::new(Vec::new());
    let (_, _, _, _, (killed, promoted, resumed_at)) = tokio::join!(
        writer(&cluster, "a", &stop, &acked, &failed),
        writer(&cluster, "b", &stop, &acked, &failed),
        bulk_writer(&cluster, "c", &stop, &acked_bulk, &failed),
        reader,
        failure
    );
    eprintln!(
        "failover: killed, promoted after {:?}, 40 more writes acknowledged {:?} after the kill; {} write(s) failed",
        promoted - killed,
        resumed_at - killed,
        failed.load(Ordering::Relaxed)
    );

    eprintln!("[{:?}] writers stopped", t0.elapsed());
    // Reads were served throughout.
    assert_eq!(
        reads_failed.load(Ordering::Relaxed),
        0,
        "reads failed during the failover"
    );
    assert!(reads_served.load(Ordering::Relaxed) > 50);

    // The map names the new primary, one term later, with its history line.
    let mut meta_conn = meta::connect(&settings).await.expect("metadata");
    let map = meta::load(&mut meta_conn.client).await.unwrap().unwrap();
    assert_eq!(map.version, MapVersion(2));
    assert_eq!(map.shards[0].primary, pair.replica());
    assert_eq!(map.shards[0].replicas, vec![pair.primary()]);
    assert_eq!(map.shards[0].term, 2);
    assert_eq!(cluster.map().term(0), 2, "the gateway's view of the term");
    let history = meta::history_lines(&meta_conn.client, 5).await.unwrap();
    assert_eq!(history[0].action, "failover");
    assert!(
        history[0].summary.contains(&format!(
            "from {} to {}, term 2",
            pair.primary(),
            pair.replica()
        )),
        "{}",
        history[0].summary
    );

    // Every acknowledged write is on the new primary, once: at the very version its
    // acknowledgement gave (a second application would have raised it).
    let mut expected: Vec<(String, i64)> = acked.lock().unwrap().clone();
    expected.extend(before_versions);
    expected.sort();
    let list = expected
        .iter()
        .map(|(i, _)| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(",");
    let stored = pair.query(
        pair.replica_port,
        &name,
        &format!("SELECT id, version FROM records WHERE id IN ({list}) ORDER BY id"),
    );
    let stored: Vec<(String, i64)> = stored
        .lines()
        .map(|l| {
            let (id, v) = l.split_once('|').expect("id|version");
            (id.to_owned(), v.parse().expect("a version"))
        })
        .collect();
    let lost = expected
        .iter()
        .filter(|e| !stored.iter().any(|s| s.0 == e.0))
        .count();
    let twice = expected
        .iter()
        .filter(|e| stored.iter().any(|s| s.0 == e.0 && s.1 != e.1))
        .count();
    eprintln!(
        "acknowledged {}: lost {lost}, applied twice {twice}",
        expected.len()
    );
    // Every record of an acknowledged bulk write is there too.
    let bulk = acked_bulk.lock().unwrap().clone();
    assert!(bulk.len() > 30, "bulk writes under way: {}", bulk.len());
    let list = bulk
        .iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(",");
    let present = pair.query(
        pair.replica_port,
        &name,
        &format!("SELECT count(*) FROM records WHERE id IN ({list})"),
    );
    eprintln!(
        "acknowledged by bulk writes {}: present {present}",
        bulk.len()
    );
    assert_eq!(
        present,
        bulk.len().to_string(),
        "acknowledged bulk records lost"
    );
    assert_eq!(
        (lost, twice),
        (0, 0),
        "acknowledged writes lost or applied twice"
    );
    assert_eq!(stored, expected);

    // The old primary comes back writable: the watcher fences it.
    let restarting = Instant::now();
    let p = pair.clone();
    tokio::task::spawn_blocking(move || p.restart_old_primary())
        .await
        .unwrap();
    eprintln!(
        "the old primary started again in {:?}",
        restarting.elapsed()
    );
    let fenced = Instant::now();
    loop {
        let owned = pair.query(
            pair.primary_port,
            &name,
            "SELECT count(*) FROM shardgate_slots",
        );
        if owned == "0" {
            break;
        }
        assert!(
            fenced.elapsed() < Duration::from_secs(10),
            "not fenced: owns {owned} slots"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A gateway still routing with the old map writes there: refused, nothing written.
    eprintln!("fenced {:?} after it started", fenced.elapsed());
    let stale = Cluster::with_map(&settings, &init.map).expect("a stale cluster");
    let id = "stale-1";
    let key = stale.router().route(ShardKey::parse(id).unwrap()).unwrap();
    let refused = stale
        .write(&table, &key, RecordId::parse(id).unwrap(), doc(1), None)
        .await
        .expect_err("the old primary must refuse a stale gateway's write");
    assert!(
        matches!(refused, ClusterError::NotOwner { told: 2, .. }),
        "{refused:?}"
    );
    let on_old = pair.query(
        pair.primary_port,
        &name,
        "SELECT count(*) FROM records WHERE id = 'stale-1'",
    );
    assert_eq!(on_old, "0");
    // The following cluster still writes to the new primary.
    let key = cluster
        .router()
        .route(ShardKey::parse("after-1").unwrap())
        .unwrap();
    cluster
        .write(
            &table,
            &key,
            RecordId::parse("after-1").unwrap(),
            doc(1),
            None,
        )
        .await
        .expect("a write after the old primary came back");
    let on_new = pair.query(
        pair.replica_port,
        &name,
        "SELECT count(*) FROM records WHERE id = 'after-1'",
    );
    let on_old = pair.query(
        pair.primary_port,
        &name,
        "SELECT count(*) FROM records WHERE id = 'after-1'",
    );
    assert_eq!((on_new.as_str(), on_old.as_str()), ("1", "0"));
}
