//! A slot move meets a prepared transaction on its slots. A prepared part keeps the
//! shared slot locks its writes took (PostgreSQL hands a transaction's locks to the
//! prepared transaction), and a move takes those locks exclusively before it starts
//! capturing changes and again at its fence. So the move waits for the part to be
//! committed or rolled back, and then carries the outcome:
//!
//! - **the coordinator pauses after PREPARE** (test-only pause point, feature
//!   `faults`): the move of the record's slot, started while both parts are prepared,
//!   ends only after the transaction was answered, and the record is on the new owner
//!   with the transaction's value, nowhere else;
//! - **the coordinator is killed (-9) after PREPARE**: the move waits for as long as the
//!   part is left prepared; once another gateway's recovery rolls it back (no decision
//!   was logged), the move ends and the record exists nowhere.
//!
//! Nothing is left prepared on any shard at the end of either.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shard_manager::ShardKey;
use test_app::gateway_process::Process;
use test_app::{prepare_database, test_settings};
use test_support::outage::{serial, DropDatabase};

use crate::movers::{assert_done, move_id, mover_process};
use crate::support::keys_on;
use crate::txn_support::{self, balance, prepared, waiting_for_slot, RollBackLeftovers};

async fn transfer(port: u16, a: &str, b: &str) -> Result<(u16, Value), reqwest::Error> {
    let body = json!({"operations": [
        {"table": "users", "shard_key": a, "id": a, "data": {"balance": 90}, "if_version": 0},
        {"table": "users", "shard_key": b, "id": b, "data": {"balance": 10}, "if_version": 0},
    ]});
    let res = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/transaction"))
        .timeout(Duration::from_secs(30))
        .json(&body)
        .send()
        .await?;
    let status = res.status().as_u16();
    Ok((status, res.json().await.unwrap_or(Value::Null)))
}

/// Waits until a session of `url` (the mover) waits for `slot`'s write lock.
async fn until_the_move_waits(url: &str, slot: i32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while waiting_for_slot(url, slot) == 0 {
        assert!(
            Instant::now() < deadline,
            "the move never waited for slot {slot}'s lock"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until `url` holds `n` of our prepared parts.
async fn until_prepared(url: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while prepared(url).len() != n {
        assert!(Instant::now() < deadline, "not {n} prepared within 10 s");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn a_slot_move_waits_for_a_prepared_transaction_and_carries_its_outcome() {
    let _serial = serial().await;
    let mut settings = test_settings();
    prepare_database(&mut settings).await;
    let db = DropDatabase(settings.cluster.database.dbname.clone());
    let (primaries, _) = txn_support::urls(&settings);
    let urls = &primaries[..3];
    let _leftovers = RollBackLeftovers(urls.to_vec());
    let router = settings.cluster.validate().expect("valid settings");
    let slot_of = |key: &str| {
        i32::try_from(
            router
                .route(ShardKey::parse(key).unwrap())
                .unwrap()
                .slot()
                .0,
        )
        .unwrap()
    };
    let keys_a = keys_on(&settings, 0, 2);
    let keys_b = keys_on(&settings, 1, 2);
    let no_prepared = |when: &str| {
        for (shard, u) in urls.iter().enumerate() {
            assert_eq!(prepared(u), Vec::<String>::new(), "{when}: shard {shard}");
        }
    };

    // 1. The coordinator pauses 3 s with both parts prepared; the move starts then.
    let paused = Process::start(
        &db.0,
        &[("SHARDGATE_FAULT_PAUSE_GATEWAY", "after-prepare:3000")],
    )
    .await;
    let (a, b) = (keys_a[0].clone(), keys_b[0].clone());
    let port = paused.port;
    let (a2, b2) = (a.clone(), b.clone());
    let answer = tokio::spawn(async move {
        let got = transfer(port, &a2, &b2).await.expect("an answer");
        (got, Instant::now())
    });
    until_prepared(&urls[0], 1).await;
    let dbname = db.0.clone();
    let slot = slot_of(&a);
    let op = format!("startslots:0:2:{slot}");
    let moving = tokio::spawn(async move {
        let ended = mover_process(&dbname, &op, None).await;
        (ended, Instant::now())
    });
    until_the_move_waits(&urls[0], slot).await;
    assert!(
        !answer.is_finished(),
        "the pause was over before the move waited"
    );
    let ((status, body), answered_at) = answer.await.unwrap();
    let (ended, moved_at) = moving.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(ended.success, "the mover failed: {}", ended.output);
    assert!(
        moved_at > answered_at,
        "the move ended before the prepared transaction was answered"
    );
    assert_done(&settings.cluster, move_id(&ended.output)).await;
    assert_eq!(
        balance(&urls[2], &a),
        Some(90),
        "the record moved with its value"
    );
    assert_eq!(balance(&urls[0], &a), None, "and left its old shard");
    assert_eq!(balance(&urls[1], &b), Some(10));
    no_prepared("after the paused transaction");
    drop(paused);

    // 2. The coordinator dies after PREPARE: the move waits for the recovery.
    let mut doomed = Process::start(
        &db.0,
        &[
            ("SHARDGATE_FAULT_KILL_GATEWAY", "after-prepare"),
            ("SHARDGATE__SERVER__TXN_IN_DOUBT_MS", "600000"),
        ],
    )
    .await;
    let (a, b) = (keys_a[1].clone(), keys_b[1].clone());
    assert!(
        transfer(doomed.port, &a, &b).await.is_err(),
        "the gateway answered"
    );
    let exit = doomed.died_within(Duration::from_secs(5)).await;
    assert_eq!(exit.signal(), Some(9), "{}", doomed.output());
    assert_eq!((prepared(&urls[0]).len(), prepared(&urls[1]).len()), (1, 1));
    let dbname = db.0.clone();
    let slot = slot_of(&a);
    let op = format!("startslots:0:2:{slot}");
    let moving = tokio::spawn(async move { mover_process(&dbname, &op, None).await });
    until_the_move_waits(&urls[0], slot).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !moving.is_finished(),
        "the move ended while a part on its slot was still prepared"
    );
    assert_eq!(prepared(&urls[0]).len(), 1, "nothing resolved the part yet");
    let recovered_from = Instant::now();
    let rescuer = Process::start(
        &db.0,
        &[
            ("SHARDGATE__SERVER__TXN_IN_DOUBT_MS", "500"),
            ("SHARDGATE__SERVER__TXN_RECOVERY_MS", "200"),
        ],
    )
    .await;
    let ended = tokio::time::timeout(Duration::from_secs(60), moving)
        .await
        .expect("the move ended within 60 s of the recovery")
        .unwrap();
    assert!(ended.success, "the mover failed: {}", ended.output);
    eprintln!(
        "the move ended {:?} after a recovering gateway started",
        recovered_from.elapsed()
    );
    assert_done(&settings.cluster, move_id(&ended.output)).await;
    for (shard, u) in urls.iter().enumerate() {
        assert_eq!(balance(u, &a), None, "rolled back: shard {shard}");
    }
    assert_eq!(balance(&urls[1], &b), None, "rolled back on shard 1");
    no_prepared("after the recovery");
    drop(rescuer);
}
