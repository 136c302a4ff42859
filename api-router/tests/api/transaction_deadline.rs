//! A transaction across shards whose part waits on a lock past the request's deadline:
//! the client is told `transaction-in-doubt` at the deadline (never a bare 504), the
//! coordinator goes on by itself, and within its bound nothing is left prepared and
//! the transaction stands whole or not at all. A lock released in time: committed on
//! both shards. A lock held past the statement timeout: rolled back on both.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use diesel::sql_types::Text;
use diesel::{Connection, RunQueryDsl};
use serde_json::{json, Value};
use test_app::{spawn_app_with, TestApp};

use crate::transaction::{balance, prepared, two_shards, upsert};

const REQUEST_MS: u64 = 1000;
const STATEMENT_MS: u64 = 3000;

async fn txn(app: &TestApp, ops: Vec<Value>) -> (u16, Value) {
    let res = app
        .post_json("/api/transaction", None, &json!({ "operations": ops }))
        .await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Another client locks `key`'s record (table `users`, id = key) on its primary for
/// `hold`; returns once the lock is taken.
fn hold_lock(app: &TestApp, key: &str, hold: Duration) -> std::thread::JoinHandle<()> {
    let mut conn = app.connect(&app.primary(app.shard_of(key).0 as usize));
    let key = key.to_owned();
    let (locked, taken) = mpsc::channel();
    let holder = std::thread::spawn(move || {
        conn.transaction::<_, diesel::result::Error, _>(|c| {
            diesel::sql_query(
                "SELECT 1 FROM records WHERE table_name = 'users' AND shard_key = $1 AND id = $1 FOR UPDATE",
            )
            .bind::<Text, _>(&key)
            .execute(c)?;
            locked.send(()).unwrap();
            std::thread::sleep(hold);
            Ok(())
        })
        .expect("the lock holder's transaction");
    });
    taken
        .recv_timeout(Duration::from_secs(5))
        .expect("the lock is taken");
    holder
}

#[tokio::test]
async fn a_lock_past_the_request_deadline_answers_in_doubt_and_settles_whole_by_itself() {
    let app = spawn_app_with(|s| {
        s.server.request_timeout_ms = REQUEST_MS;
        // No lock bound but the statement timeout, so a part can wait past the request.
        s.cluster.database.txn_lock_timeout_ms = 0;
        s.cluster.database.statement_timeout_ms = STATEMENT_MS;
    })
    .await;
    let bound = app_bound(&app);
    let (a, b) = two_shards(&app);
    let (status, body) = txn(&app, vec![upsert(&a, 100, None), upsert(&b, 0, None)]).await;
    assert_eq!(status, 200, "{body}");

    // (how long b's record stays locked, the balance sent, whether it commits)
    for (hold_ms, sent, commits) in [(2000, 1, true), (STATEMENT_MS + 2000, 2, false)] {
        let before = (balance(&app, &a).await, balance(&app, &b).await);
        let holder = hold_lock(&app, &b, Duration::from_millis(hold_ms));
        let started = Instant::now();
        let (status, problem) =
            txn(&app, vec![upsert(&a, sent, None), upsert(&b, sent, None)]).await;
        let answered = started.elapsed();
        assert_eq!(status, 503, "hold {hold_ms} ms: {problem}");
        assert_eq!(
            problem["type"], "urn:shardgate:problem:transaction-in-doubt",
            "{problem}"
        );
        assert!(problem["shard"].is_u64(), "the shard is named: {problem}");
        assert!(
            answered < Duration::from_millis(hold_ms),
            "answered at the request's deadline, not after the lock: {answered:?}"
        );

        // The coordinator settles by itself within its bound: nothing left prepared.
        let deadline = Instant::now() + bound + Duration::from_secs(2);
        while prepared(&app) > 0 {
            assert!(
                Instant::now() < deadline,
                "a part still prepared {:?} after the answer (bound {bound:?})",
                started.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        holder.join().unwrap();
        let (ba, bb) = (balance(&app, &a).await, balance(&app, &b).await);
        if commits {
            assert_eq!(
                (ba.unwrap().0, bb.unwrap().0),
                (sent, sent),
                "the lock was released in time: committed on both shards"
            );
        } else {
            assert_eq!(
                (ba, bb),
                before,
                "the lock outlasted the statement: rolled back on both shards"
            );
        }
    }
}

/// The coordinator's own bound after PREPARE, from the app's settings.
fn app_bound(app: &TestApp) -> Duration {
    shard_manager::cluster::txn::deadline::steps_bound(
        &app.settings.cluster.database,
        shard_manager::cluster::txn::log::CALL_BOUND,
    )
}
