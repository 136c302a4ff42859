//! The automatic balancer (`[balancer] auto = true`) under steady skewed writes: it acts
//! once (the plan's moves, started together), then holds for two minutes with no move
//! back and forth, and no write fails meanwhile.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use control_plane::moves::auto_balance::BalancerSettings;
use diesel::sql_types::{BigInt, Integer};
use diesel::{QueryableByName, RunQueryDsl};
use serde_json::json;

use crate::helpers::{spawn_app_with, TestApp};
use crate::outage::serial;

#[derive(QueryableByName, Debug)]
struct BalanceMove {
    #[diesel(sql_type = Integer)]
    source: i32,
    #[diesel(sql_type = Integer)]
    target: i32,
    #[diesel(sql_type = BigInt)]
    started_ms: i64,
}

/// The balancer's moves so far, from the test's metadata database.
fn balance_moves(app: &TestApp) -> Vec<BalanceMove> {
    let mut conn = app.connect(&app.settings.cluster.metadata.address);
    diesel::sql_query(
        "SELECT source, target, (extract(epoch FROM started_at) * 1000)::bigint AS started_ms \
         FROM moves WHERE kind = 'balance' ORDER BY id",
    )
    .load(&mut conn)
    .expect("moves")
}

#[tokio::test]
async fn the_automatic_balancer_acts_once_then_holds() {
    let _serial = serial().await;
    let app = Arc::new(
        spawn_app_with(|s| {
            s.balancer = BalancerSettings {
                auto: true,
                margin_percent: 25,
                hold_secs: 5,
                spacing_secs: 30,
                max_slots_per_hour: 512,
                check_secs: 1,
            };
        })
        .await,
    );
    // 300 keys on shard 0, 30 on each of the others, written over and over.
    let on = |shard: usize, n: usize| -> Vec<String> {
        (0..)
            .map(|i| format!("auto-{shard}-{i}"))
            .filter(|k| app.shard_of(k).index() == shard)
            .take(n)
            .collect()
    };
    let keys: Arc<Vec<String>> = Arc::new([on(0, 300), on(1, 30), on(2, 30)].concat());
    let stop = Arc::new(AtomicBool::new(false));
    let (written, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (app, keys, stop) = (app.clone(), keys.clone(), stop.clone());
            let (written, failed) = (written.clone(), failed.clone());
            tokio::spawn(async move {
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let k = &keys[i % keys.len()];
                    let body = json!({"table": "users", "id": format!("{k}-r"), "data": {"i": i}});
                    let res = app.write(k, &body).await;
                    if res.status().is_success() {
                        written.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        eprintln!("write {k}: {}", res.status());
                    }
                    i += 4;
                }
            })
        })
        .collect();

    // It acts within a minute: the hold (5 s) over the last minute's load.
    let started = Instant::now();
    let first = loop {
        let moves = balance_moves(&app);
        if !moves.is_empty() {
            break moves;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the balancer never acted"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    eprintln!(
        "the balancer acted {:?} after the load began: {first:?}",
        started.elapsed()
    );
    // Then two minutes of the same load.
    tokio::time::sleep(Duration::from_secs(120)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let moves = balance_moves(&app);
    // One action: its moves all from the busy shard, started within one plan's run
    // (each waits for the one before), none after the spacing.
    assert!(
        moves.iter().all(|m| m.source == 0 && m.target != 0),
        "{moves:?}"
    );
    assert!(moves.len() <= 2, "more moves than one plan has: {moves:?}");
    let span = moves.last().unwrap().started_ms - moves[0].started_ms;
    assert!(
        span < 30_000,
        "a second action {span} ms after the first: {moves:?}"
    );
    assert_eq!(failed.load(Ordering::Relaxed), 0, "writes failed");
    assert!(written.load(Ordering::Relaxed) > 1000);
    // The placement it left: shard 0 no longer takes most of the writes.
    let map = control_plane::map::change::current(&app.settings.cluster)
        .await
        .unwrap();
    let on_zero = keys
        .iter()
        .filter(|k| {
            let slot = app
                .router()
                .route(shard_manager::ShardKey::parse(k).unwrap())
                .unwrap()
                .slot()
                .0;
            map.owners[slot as usize].index() == 0
        })
        .count();
    assert!(on_zero <= 150, "{on_zero} of 360 keys still on shard 0");
}
