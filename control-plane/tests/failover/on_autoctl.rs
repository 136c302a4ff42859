//! The shard run by a real HA manager: a private pg_auto_failover formation
//! (`autoctl`: a monitor, a primary and a synchronous secondary). Under two writers, a
//! bulk writer and a reader, the primary's whole machine dies (`kill -9` of its keeper
//! and PostgreSQL); nobody promotes anything by hand. Then: the monitor promoted the
//! secondary, writes resume on it, no acknowledged write is lost or applied twice, no
//! read failed, and the map names the new primary at term 2. The old node's keeper is
//! started again: it rejoins as a secondary (in recovery), and no write reached it
//! (every write acknowledged meanwhile is on the new primary).
//!
//! Skipped, loudly, only when pg_autoctl is not installed and `SHARDGATE_REQUIRE_HA` is
//! unset; `./setup.sh test` installs pg_auto_failover and sets it, so CI always runs it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use control_plane::map::meta;
use shard_manager::{ClusterSettings, MapVersion, ShardId};
use tokio_postgres::Client;

use crate::ha_shard;
use crate::workload::{
    bulk_writer, count_sql, lost_and_twice, parse_versions, reader, stored_versions_sql,
    write_before, writer, Tally,
};

/// A connection to `addr`'s scratch database, to ask it its role.
async fn connect(settings: &ClusterSettings, addr: &str) -> Client {
    let url = shard_manager::servers::connection_url(&settings.database, addr);
    let (client, conn) = control_plane::postgres::connect(&url, &settings.database)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    tokio::spawn(conn);
    client
}

/// `pg_is_in_recovery()`, or None when the server did not answer.
async fn in_recovery(client: &Client) -> Option<bool> {
    let row = client.query_one("SELECT pg_is_in_recovery()", &[]).await;
    row.ok().map(|r| r.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_on_pg_auto_failover_loses_its_primary_machine_and_the_old_one_rejoins() {
    let t0 = Instant::now();
    let Some(shard) = ha_shard::start("the failover on pg_auto_failover").await else {
        return;
    };
    let (formation, settings, init, following) = (
        &shard.formation,
        &shard.settings,
        &shard.init,
        &shard.following,
    );
    let name = settings.database.dbname.clone();
    let (old, new) = (formation.addr(0), formation.addr(1));
    assert_eq!((init.version, init.shards[0].term), (MapVersion(1), 1));
    let cluster = following.cluster.clone();
    let before = write_before(&cluster, 20).await;
    let before_ids: Vec<String> = before.iter().map(|a| a.id.clone()).collect();
    eprintln!(
        "[{:?}] formation up, map seeded, 20 records written",
        t0.elapsed()
    );
    assert_eq!(
        formation.query(0, "postgres", "SHOW synchronous_standby_names"),
        "ANY 1 (pgautofailover_standby_2)",
        "pg_auto_failover's synchronous replication"
    );

    let standby = connect(settings, &new).await;
    assert_eq!(in_recovery(&standby).await, Some(true));
    let stop = AtomicBool::new(false);
    let tally = Tally::default();
    let failure = async {
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
        // Nobody but the monitor promotes.
        let promoted = loop {
            if in_recovery(&standby).await == Some(false) {
                break Instant::now();
            }
            assert!(
                killed.elapsed() < Duration::from_secs(60),
                "the monitor did not promote the secondary within 60 s:\n{}",
                formation.show_state()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let resumed = loop {
            let n = tally.acked_count();
            let followed = cluster.shard(ShardId(0)).unwrap().primary.addr == new;
            if n >= acked_before_kill + 40 && followed {
                break Instant::now();
            }
            assert!(
                killed.elapsed() < Duration::from_secs(60),
                "writes did not resume within 60 s ({n} acknowledged)"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        eprintln!("after the failover:\n{}", formation.show_state());

        // The old machine back, under the same load: its keeper makes it a secondary.
        let old_client_seen_writable = Arc::new(AtomicBool::new(false));
        let restarted = Instant::now();
        let f = formation.clone();
        tokio::task::spawn_blocking(move || f.restart_node(0))
            .await
            .unwrap();
        // Watches the old node's role while it comes back: writable would be split brain.
        let watch = {
            let seen = old_client_seen_writable.clone();
            let settings = settings.clone();
            let old = old.clone();
            tokio::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(60);
                while Instant::now() < deadline {
                    let url = shard_manager::servers::connection_url(&settings.database, &old);
                    if let Ok((c, conn)) =
                        control_plane::postgres::connect(&url, &settings.database).await
                    {
                        tokio::spawn(conn);
                        while let Some(r) = in_recovery(&c).await {
                            if !r {
                                seen.store(true, Ordering::Relaxed);
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let f = formation.clone();
        tokio::task::spawn_blocking(move || {
            f.wait_states(&["secondary", "primary"], Duration::from_secs(60))
        })
        .await
        .unwrap();
        let rejoined = Instant::now();
        // Writes go on a moment with the old node a secondary again.
        let n = tally.acked_count();
        while tally.acked_count() < n + 40 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.store(true, Ordering::Relaxed);
        watch.abort();
        (
            killed,
            promoted,
            resumed,
            restarted,
            rejoined,
            old_client_seen_writable.load(Ordering::Relaxed),
        )
    };
    let (_, _, _, _, (killed, promoted, resumed, restarted, rejoined, split_brain)) = tokio::join!(
        writer(&cluster, "a", &stop, &tally),
        writer(&cluster, "b", &stop, &tally),
        bulk_writer(&cluster, "c", &stop, &tally),
        reader(&cluster, &before_ids, &stop, &tally),
        failure
    );
    let first_write = tally
        .first_ack_after(promoted)
        .expect("a write acknowledged after the promotion");
    eprintln!(
        "pg_auto_failover: kill -9 of the primary's node -> promotion {:?}, first acknowledged \
         write {:?}, 40 more writes {:?}; {} write(s) failed; old node back as a secondary \
         {:?} after its keeper started{}",
        promoted - killed,
        first_write - killed,
        resumed - killed,
        tally.failed.load(Ordering::Relaxed),
        rejoined - restarted,
        if split_brain {
            " (SPLIT-BRAIN WINDOW: the old node was seen writable while it came back)"
        } else {
            ""
        }
    );
    eprintln!("after the rejoin:\n{}", formation.show_state());

    assert_eq!(
        tally.reads_failed.load(Ordering::Relaxed),
        0,
        "reads failed during the failover"
    );
    assert!(tally.reads_served.load(Ordering::Relaxed) > 50);

    // The map names the promoted node, one term later.
    let mut meta_conn = meta::connect(settings).await.expect("metadata");
    let map = meta::load(&mut meta_conn.client).await.unwrap().unwrap();
    assert_eq!(map.version, MapVersion(2));
    assert_eq!(map.shards[0].primary, new);
    assert_eq!(map.shards[0].replicas, vec![old.clone()]);
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

    // Every acknowledged write on the new primary, once; the old node (a secondary now)
    // holds exactly the same once it has replayed: nothing was written there alone.
    let expected = tally.expected(&before);
    let sql = stored_versions_sql(&expected);
    let stored = parse_versions(&formation.query(1, &name, &sql));
    let (lost, twice) = lost_and_twice(&expected, &stored);
    let bulk = tally.acked_bulk.lock().unwrap().clone();
    assert!(bulk.len() > 30, "bulk writes under way: {}", bulk.len());
    let present = formation.query(1, &name, &count_sql(&bulk));
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

    assert_eq!(
        formation.query(0, "postgres", "SELECT pg_is_in_recovery()"),
        "t"
    );
    let all = "SELECT id || ':' || version FROM records ORDER BY id";
    let on_new = formation.query(1, &name, all);
    let caught_up = Instant::now();
    loop {
        let on_old = formation.query(0, &name, all);
        if on_old == on_new {
            break;
        }
        assert!(
            caught_up.elapsed() < Duration::from_secs(10),
            "the old node, a secondary again, differs from the new primary: {} rows against {}",
            on_old.lines().count(),
            on_new.lines().count()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
