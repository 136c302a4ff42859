//! The automatic balancer (`[balancer] auto = true`) under steady skewed writes: it acts
//! once (the plan's moves, started together), then holds for two minutes with no move
//! back and forth, and no write fails meanwhile. Its decisions are in the map's history
//! (what `shard-admin map history` prints): the rise it held, the moves, then the holds
//! after them, one line each time the reason changes, not one a check.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use control_plane::moves::auto_balance::BalancerSettings;
use diesel::sql_types::{BigInt, Integer};
use diesel::{QueryableByName, RunQueryDsl};
use serde_json::json;
use test_app::{spawn_app_with, TestApp};
use test_support::outage::serial;

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
    // The history, oldest first: the balancer's lines (notes) and the moves' switches.
    let meta = control_plane::map::meta::connect(&app.settings.cluster)
        .await
        .expect("metadata connection");
    let mut history = control_plane::map::meta::history_lines(&meta.client, 10_000)
        .await
        .expect("history");
    history.reverse();
    let notes: Vec<&str> = history
        .iter()
        .filter(|l| l.note)
        .map(|l| l.summary.as_str())
        .collect();
    eprintln!("the balancer's lines: {notes:#?}");
    assert!(
        history
            .iter()
            .filter(|l| l.note)
            .all(|l| l.action == "balancer" && l.actor.starts_with("balancer@")),
        "{history:?}"
    );
    assert!(notes[0].starts_with("runs on this host"), "{notes:?}");
    let decided: Vec<usize> = (0..notes.len())
        .filter(|i| notes[*i].starts_with("move, "))
        .collect();
    assert_eq!(
        decided.len(),
        moves.len(),
        "one line per move it ran: {notes:?}"
    );
    for (i, m) in decided.iter().zip(&moves) {
        assert!(
            notes[*i].contains(&format!("from shard-{} ", m.source))
                && notes[*i].contains(&format!("to shard-{}:", m.target)),
            "{} against {m:?}",
            notes[*i]
        );
    }
    // Before the moves, the rise it held for hold_secs: written once, not each second.
    assert_eq!(
        notes[..decided[0]]
            .iter()
            .filter(|n| n.starts_with("hold, above the mean: "))
            .count(),
        1,
        "{notes:?}"
    );
    // Each move's switch is a change in the history (action `balance`), after the
    // first decision.
    let position = |f: &dyn Fn(&control_plane::map::meta::HistoryLine) -> bool| {
        history.iter().position(f).expect("in the history")
    };
    let switches: Vec<_> = history
        .iter()
        .filter(|l| !l.note && l.action == "balance")
        .collect();
    assert_eq!(switches.len(), moves.len(), "{history:?}");
    assert!(
        position(&|l| l.note && l.summary.starts_with("move, "))
            < position(&|l| !l.note && l.action == "balance"),
        "{history:?}"
    );
    // After them, about 120 checks: holds only, each a change of reason; the last says
    // the cluster is balanced.
    let after = &notes[decided.last().unwrap() + 1..];
    assert!(!after.is_empty(), "no hold written after the moves");
    assert!(after.iter().all(|n| n.starts_with("hold, ")), "{after:?}");
    assert!(
        after
            .windows(2)
            .all(|w| w[0].split(':').next() != w[1].split(':').next()),
        "the same reason written twice in a row: {after:?}"
    );
    assert!(after.len() <= 6, "the history flooded: {after:?}");
    assert!(
        after.last().unwrap().starts_with("hold, balanced: "),
        "{after:?}"
    );
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
