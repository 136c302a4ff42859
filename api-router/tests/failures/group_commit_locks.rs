//! Group commit isolates writes held up by locks: 70 records of shard 0 are locked
//! from outside (as rows a transaction in doubt holds are) for 7 s, longer than a
//! group's deadline (the statement timeout and a second), while 70 writes to them and
//! 30 writes to other records of the same shard arrive together at one grouping
//! gateway. The held-up writes leave their group (each alone, waiting as a lone write
//! does); the 30 others all commit, each answered within 2 s. Before the group's lock
//! waits shared one bound, held-up writes left one per round at 100 ms a round, and
//! past the deadline every other write of the group was answered 504 "may have
//! committed" although its group had been rolled back.

use std::time::{Duration, Instant};

use diesel::sql_types::{Array, Text};
use diesel::{Connection, PgConnection, RunQueryDsl};
use futures_util::future::join_all;
use serde_json::json;
use shard_manager::servers::connection_url;
use test_app::{prepare_database, test_settings};
use test_support::outage::{serial, DropDatabase};

use crate::support::{keys_on, Gateway};

const HELD: usize = 70;
const FREE: usize = 30;

#[tokio::test]
async fn writes_held_up_by_locks_leave_their_group_and_the_others_commit_at_once() {
    let _serial = serial().await;
    let mut settings = test_settings();
    settings.cluster.database.batch_writes = true;
    prepare_database(&mut settings).await;
    let _db = DropDatabase(settings.cluster.database.dbname.clone());
    let primary = connection_url(
        &settings.cluster.database,
        &settings.cluster.shards[0].primary,
    );
    let keys = keys_on(&settings, 0, HELD + FREE);
    let (held, free) = keys.split_at(HELD);
    let gateway = Gateway::start(settings).await;
    for key in &keys {
        let res = gateway.write(key, key).await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    }

    // The held records locked for 7 s from a connection of our own.
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
    let lock_keys: Vec<String> = held.to_vec();
    let locker = std::thread::spawn(move || {
        let mut conn = PgConnection::establish(&primary).expect("connect to the primary");
        diesel::sql_query("BEGIN").execute(&mut conn).unwrap();
        let rows = diesel::sql_query(
            "SELECT 1 FROM records WHERE table_name = 'users' AND shard_key = ANY($1) \
             AND id = shard_key FOR UPDATE",
        )
        .bind::<Array<Text>, _>(&lock_keys)
        .execute(&mut conn)
        .expect("lock the rows");
        let _ = locked_tx.send(rows);
        std::thread::sleep(Duration::from_secs(7));
        diesel::sql_query("ROLLBACK").execute(&mut conn).unwrap();
    });
    assert_eq!(locked_rx.await.unwrap(), HELD, "every held record locked");

    // All at once: the held-up writes first, so the groups carry both.
    let write = |key: &String| {
        let gateway = &gateway;
        let key = key.clone();
        async move {
            let began = Instant::now();
            let res = gateway
                .client
                .post(format!("{}/api/write", gateway.address))
                .header("x-shard-key", &key)
                .timeout(Duration::from_secs(30))
                .json(&json!({"table": "users", "id": key, "data": {"again": true}}))
                .send()
                .await
                .expect("an answer");
            let status = res.status().as_u16();
            (key, status, res.text().await.unwrap(), began.elapsed())
        }
    };
    let (held_answers, free_answers) = tokio::join!(
        join_all(held.iter().map(write)),
        join_all(free.iter().map(write)),
    );
    locker.join().unwrap();

    for (key, status, body, took) in &free_answers {
        assert_eq!(*status, 200, "{key}, a free record, after {took:?}: {body}");
        assert!(
            *took < Duration::from_secs(2),
            "{key}, a free record, waited {took:?} behind the held-up writes"
        );
    }
    // The held-up writes waited alone on their locks: a timeout each (504), or a
    // commit once the locks went.
    for (key, status, body, _) in &held_answers {
        assert!(
            matches!(status, 200 | 503 | 504),
            "{key}, a held record: {status} {body}"
        );
    }
    let slowest = free_answers.iter().map(|a| a.3).max().unwrap();
    eprintln!(
        "group commit with {HELD} writes held up: the slowest of {FREE} others took {slowest:?}"
    );
}
