//! Slots moved between shards online (`shard-admin move-slots`), under writers and
//! readers going through two gateways: nothing acknowledged is lost, nothing ends on two
//! shards, and a mover killed (-9) at any step, with a source replica stopped for real,
//! resumes to the same end. Abort mid-copy and reversal end consistent too.

use std::time::{Duration, Instant};

use control_plane::map::change;
use control_plane::moves::{mover, plan::Which, Phase};
use serde_json::json;
use test_app::{spawn_app, TestApp};
use test_support::outage::{serial, Node, Outage};

use crate::movers::{
    assert_done, check_clean_run, check_placement, move_id, mover_process, status, Workload,
};
use crate::support::Gateway;

/// The mover's child process (see `movers::mover_process`): does nothing in a normal run.
#[tokio::test]
#[ignore = "run by the resharding tests as the mover's child process"]
async fn mover_child() {
    if let (Ok(db), Ok(op)) = (std::env::var("SG_MOVER_DB"), std::env::var("SG_MOVER_OP")) {
        crate::movers::child(&db, &op).await;
    }
}

/// 5,000 `events` rows spread over every shard, so that moved slots carry data.
async fn preload(app: &TestApp) {
    for batch in 0..10 {
        let records: Vec<_> = (0..500)
            .map(|i| {
                let n = batch * 500 + i;
                json!({"shard_key": format!("pre-{}", n % 1000), "id": format!("e{n}"), "data": {"n": n}})
            })
            .collect();
        let res = app
            .bulk(None, &json!({"table": "events", "records": records}))
            .await;
        assert_eq!(res.status().as_u16(), 200, "preload batch {batch}");
    }
}

async fn rows_in(app: &TestApp, shard: usize, slots: &[i32]) -> i64 {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let list: Vec<String> = slots.iter().map(i32::to_string).collect();
    let mut conn = app.connect(&app.primary(shard));
    diesel::sql_query(format!(
        "SELECT count(*) AS n FROM records WHERE slot IN ({})",
        list.join(",")
    ))
    .get_result::<N>(&mut conn)
    .unwrap()
    .n
}

#[tokio::test]
async fn slots_move_under_writes_through_two_gateways_losing_nothing_and_failing_no_request() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let other = Gateway::start(app.settings.clone()).await;
    preload(&app).await;
    let before = change::current(&app.settings.cluster).await.unwrap();
    let work = Workload::start(&[app.address.clone(), other.address.clone()], 4, 40);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    let ended = mover_process(&app.settings.cluster.database.dbname, "start:0:2:128", None).await;
    assert!(ended.success, "the mover failed: {}", ended.output);
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = work.stop().await;

    let mv = assert_done(&app.settings.cluster, move_id(&ended.output)).await;
    assert_eq!(mv.detail.slots.len(), 128);
    assert!(mv.rows_copied > 0, "{mv:?}");
    assert_eq!(
        rows_in(&app, 0, &mv.detail.slots).await,
        0,
        "the source's rows are gone"
    );
    let after = change::current(&app.settings.cluster).await.unwrap();
    assert_eq!(after.version.0, before.version.0 + 1);
    assert_eq!(
        after.slots_of(mv.detail.target).len(),
        before.slots_of(mv.detail.target).len() + 128
    );
    check_clean_run(&app, &seen).await;
    eprintln!(
        "move of 128 slots: {} rows copied, {} changes replayed, fence {:?} ms, {:.1} s; {} writes and {} reads meanwhile, none failed",
        mv.rows_copied,
        mv.rows_replayed,
        mv.fence_ms,
        took.as_secs_f64(),
        seen.writes,
        seen.reads
    );
}

#[tokio::test]
async fn a_mover_killed_at_every_step_with_a_source_replica_down_resumes_losing_nothing() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let other = Gateway::start(app.settings.clone()).await;
    preload(&app).await;
    let db = app.settings.cluster.database.dbname.clone();
    let work = Workload::start(&[app.address.clone(), other.address.clone()], 3, 40);

    let first = mover_process(&db, "start:1:0:300", Some("capture")).await;
    assert!(first.killed, "killed at capture: {}", first.output);
    let id = move_id(&first.output);
    let steps = [
        "copy:2",
        "copy:3",
        "replay",
        "replay-before-forget",
        "switch-before-tell",
        "switch-after-tell",
        "switch-before-commit",
        "switch-after-source",
        "clean",
    ];
    let mut replica = None;
    for (i, step) in steps.iter().enumerate() {
        let mv = status(&app.settings.cluster, id).await;
        assert!(!mv.running, "nobody runs a killed move: {mv:?}");
        assert!(mv.phase.active(), "{mv:?}");
        assert!(
            mv.advice().contains("resume"),
            "status says how to go on: {}",
            mv.advice()
        );
        if i == 2 {
            // The source's replica goes down for real in the middle of the move.
            replica = Some(Outage::begin(&[Node::Replica(1)]).await);
        }
        let ended = mover_process(&db, &format!("resume:{id}"), Some(step)).await;
        assert!(ended.killed, "killed at {step}: {}", ended.output);
    }
    let last = mover_process(&db, &format!("resume:{id}"), None).await;
    assert!(last.success, "resumed to the end: {}", last.output);
    if let Some(outage) = replica {
        outage.end().await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = work.stop().await;
    let mv = assert_done(&app.settings.cluster, id).await;
    assert_eq!(
        rows_in(&app, 1, &mv.detail.slots).await,
        0,
        "the source's rows are gone"
    );
    assert!(seen.stale.is_empty(), "stale reads: {:?}", seen.stale);
    check_placement(&app, &seen.acked).await;
    eprintln!(
        "killed at {} steps and resumed: {} rows copied, {} replayed; {} writes, {} failed (only while a kill left the switch half stored)",
        steps.len() + 1,
        mv.rows_copied,
        mv.rows_replayed,
        seen.writes,
        seen.failed.len()
    );
}

#[tokio::test]
async fn an_abort_mid_copy_and_a_reversed_move_each_end_consistent() {
    let _serial = serial().await;
    let app = spawn_app().await;
    preload(&app).await;
    let settings = app.settings.cluster.clone();
    let db = settings.database.dbname.clone();
    let work = Workload::start(std::slice::from_ref(&app.address), 2, 30);
    let original = change::current(&settings).await.unwrap();

    let killed = mover_process(&db, "start:2:1:200", Some("copy:3")).await;
    assert!(killed.killed, "{}", killed.output);
    let id = move_id(&killed.output);
    let mv = status(&settings, id).await;
    assert_eq!(mv.phase, Phase::Copying);
    assert!(
        rows_in(&app, 1, &mv.detail.slots).await > 0,
        "the target holds partial copies"
    );
    // A second move of a slot already moving is refused, and records nothing.
    let request = mover::Request {
        kind: "move-slots".into(),
        from: 2,
        to: 0,
        which: Which::List(mv.detail.slots[0].to_string()),
    };
    let refused = mover::start(&settings, &request)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains(&format!("already moving in move {id}")),
        "{refused}"
    );

    let aborted = mover_process(&db, &format!("abort:{id}"), None).await;
    assert!(aborted.success, "{}", aborted.output);
    assert_eq!(status(&settings, id).await.phase, Phase::Aborted);
    assert_eq!(
        rows_in(&app, 1, &mv.detail.slots).await,
        0,
        "the target's copies are gone"
    );
    assert_eq!(
        change::current(&settings).await.unwrap(),
        original,
        "the map is unchanged"
    );
    let seen = work.stop().await;
    assert!(seen.failed.is_empty(), "{:?}", seen.failed);
    check_placement(&app, &seen.acked).await;

    // Moved, then reversed: the slots are back, the rows with them.
    let work = Workload::start(std::slice::from_ref(&app.address), 2, 30);
    let moved = mover_process(&db, "start:2:1:200", None).await;
    assert!(moved.success, "{}", moved.output);
    let id = move_id(&moved.output);
    let back = mover_process(&db, &format!("reverse:{id}"), None).await;
    assert!(back.success, "{}", back.output);
    let reverse = assert_done(&settings, move_id(&back.output)).await;
    assert_eq!(reverse.detail.slots, mv.detail.slots);
    let seen = work.stop().await;
    assert!(seen.failed.is_empty(), "{:?}", seen.failed);
    let now = change::current(&settings).await.unwrap();
    assert_eq!(
        now.owners, original.owners,
        "every slot is back with its owner"
    );
    assert_eq!(now.version.0, original.version.0 + 2);
    assert_eq!(rows_in(&app, 1, &mv.detail.slots).await, 0);
    check_placement(&app, &seen.acked).await;
}
