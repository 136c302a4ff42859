//! A planned switchover on a real HA manager: a private pg_auto_failover formation
//! (`autoctl`), two writers, a bulk writer and a reader, and
//! `control_plane::failover::switchover` (what `shard-admin switchover` runs). Then:
//! no request failed, no acknowledged write lost or applied twice, the map names the
//! new primary at term 2 with a `switchover` line naming who asked, the old primary is
//! a secondary again with its drain lifted. Then the same asked of a target whose
//! machine is gone: refused, naming why, nothing changed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use control_plane::failover::switchover::{switchover, SwitchoverError};
use control_plane::map::meta;
use shard_manager::{MapVersion, ShardId};
use test_support::failover::ha_shard;
use test_support::failover::workload::{
    bulk_writer, count_sql, lost_and_twice, parse_versions, reader, stored_versions_sql,
    write_before, writer, Tally,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_switchover_under_load_fails_no_request_and_a_down_target_is_refused() {
    let Some(shard) = ha_shard::start("the switchover on pg_auto_failover").await else {
        return;
    };
    let (formation, settings, following) = (&shard.formation, &shard.settings, &shard.following);
    let name = settings.database.dbname.clone();
    let (old, new) = (formation.addr(0), formation.addr(1));
    let cluster = following.cluster.clone();
    let before = write_before(&cluster, 20).await;
    let before_ids: Vec<String> = before.iter().map(|a| a.id.clone()).collect();

    let stop = AtomicBool::new(false);
    let tally = Tally::default();
    let switch = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let started = Instant::now();
        let done = switchover(settings, ShardId(0), None, "tester@switchover", |s| {
            eprintln!("[{:?}] {s}", started.elapsed())
        })
        .await;
        let took = started.elapsed();
        // Writes go on a moment on the new primary.
        let n = tally.acked_count();
        while tally.acked_count() < n + 40 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.store(true, Ordering::Relaxed);
        (done, took)
    };
    let (_, _, _, _, (done, took)) = tokio::join!(
        writer(&cluster, "a", &stop, &tally),
        writer(&cluster, "b", &stop, &tally),
        bulk_writer(&cluster, "c", &stop, &tally),
        reader(&cluster, &before_ids, &stop, &tally),
        switch
    );
    let done = done.expect("the switchover");
    let mut acks: Vec<Instant> = tally.acked.lock().unwrap().iter().map(|a| a.at).collect();
    acks.sort();
    let longest_gap = acks.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    eprintln!(
        "switchover {} -> {} in {took:?}: writes waited {:?} (longest gap between acknowledged \
         writes {longest_gap:?}); {} write(s) failed, {} read(s) failed; old primary a \
         standby again: {}",
        done.from,
        done.to,
        done.paused,
        tally.failed.load(Ordering::Relaxed),
        tally.reads_failed.load(Ordering::Relaxed),
        done.old_is_standby
    );
    eprintln!("after the switchover:\n{}", formation.show_state());
    assert_eq!(
        (done.from.as_str(), done.to.as_str()),
        (old.as_str(), new.as_str())
    );
    assert_eq!(tally.failed.load(Ordering::Relaxed), 0, "writes failed");
    assert_eq!(
        tally.reads_failed.load(Ordering::Relaxed),
        0,
        "reads failed"
    );
    assert!(
        done.old_is_standby,
        "the old primary came back as a standby"
    );

    let mut meta_conn = meta::connect(settings).await.expect("metadata");
    let map = meta::load(&mut meta_conn.client).await.unwrap().unwrap();
    assert_eq!(map.version, MapVersion(2));
    assert_eq!(
        (map.shards[0].primary.as_str(), map.shards[0].term),
        (new.as_str(), 2)
    );
    assert_eq!(map.shards[0].replicas, vec![old.clone()]);
    let history = meta::history_lines(&meta_conn.client, 5).await.unwrap();
    assert_eq!(history[0].action, "switchover");
    assert!(
        history[0].summary.ends_with(&format!(
            "switched over from {old} to {new}, term 2 (planned, asked by tester@switchover)"
        )),
        "{}",
        history[0].summary
    );
    // The drain is lifted on both: neither answers read-only by default.
    for node in [0, 1] {
        assert_eq!(
            formation.query(node, "postgres", "SHOW default_transaction_read_only"),
            "off",
            "node {node}"
        );
    }

    let expected = tally.expected(&before);
    let stored = parse_versions(&formation.query(1, &name, &stored_versions_sql(&expected)));
    assert_eq!(
        lost_and_twice(&expected, &stored),
        (0, 0),
        "lost, applied twice"
    );
    let bulk = tally.acked_bulk.lock().unwrap().clone();
    assert_eq!(
        formation.query(1, &name, &count_sql(&bulk)),
        bulk.len().to_string()
    );

    // The standby's machine gone: a switchover to it is refused, nothing changed.
    let f = formation.clone();
    tokio::task::spawn_blocking(move || f.kill_node(0))
        .await
        .unwrap();
    let refused = match switchover(
        settings,
        ShardId(0),
        Some(&old),
        "tester@switchover",
        |_| {},
    )
    .await
    {
        Err(SwitchoverError::Refused(why)) => why,
        Err(e) => panic!("not a refusal: {e}"),
        Ok(done) => panic!("switched over to a dead node: {done:?}"),
    };
    eprintln!("refused: {refused}");
    assert!(
        refused.starts_with(&format!("no replica of shard-0 can take over: {old} ")),
        "{refused}"
    );
    let map = meta::load(&mut meta_conn.client).await.unwrap().unwrap();
    assert_eq!(
        (map.version, map.shards[0].primary.as_str()),
        (MapVersion(2), new.as_str())
    );
    assert_eq!(
        formation.query(1, "postgres", "SHOW default_transaction_read_only"),
        "off",
        "a refused switchover drains nothing"
    );
}
