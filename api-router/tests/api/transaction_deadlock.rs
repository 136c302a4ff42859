//! Two transactions across the same two shards, sent at once with their records in
//! opposite orders, often each prepare one shard's part and wait on the other for what
//! the other prepared: a deadlock no one server sees. Each part waits for a lock at
//! most `database.txn_lock_timeout_ms`; then it fails with 55P03, its coordinator rolls
//! back, and the client gets 409 `concurrent-conflict`, never a 504 after the statement
//! timeout, and never half a transaction.

use futures_util::future::join;
use serde_json::{json, Value};
use test_app::{spawn_app_with, TestApp};

use crate::transaction::{two_shards, upsert};

const ROUNDS: i64 = 12;

async fn send(app: &TestApp, ops: Vec<Value>) -> (u16, Value) {
    let res = app
        .post_json("/api/transaction", None, &json!({ "operations": ops }))
        .await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn crossed_transactions_on_two_shards_end_in_409_or_commit_never_in_a_timeout() {
    let app = spawn_app_with(|s| {
        s.cluster.database.txn_lock_timeout_ms = 300;
        s.cluster.database.statement_timeout_ms = 5000;
    })
    .await;
    let (x, y) = two_shards(&app);
    let (mut committed, mut conflicts) = (0, 0);
    for round in 0..ROUNDS {
        // Balances name the round and the transaction: 10·round + 1 for the first,
        // 10·round + 2 for the second, on both of its records.
        let (a, b) = (10 * round + 1, 10 * round + 2);
        let first = send(&app, vec![upsert(&x, a, None), upsert(&y, a, None)]);
        let second = send(&app, vec![upsert(&y, b, None), upsert(&x, b, None)]);
        let (first, second) = join(first, second).await;
        for (status, body) in [first, second] {
            match status {
                200 => {
                    assert_eq!(body["committed"], true, "{body}");
                    committed += 1;
                }
                409 => {
                    assert_eq!(
                        body["type"], "urn:shardgate:problem:concurrent-conflict",
                        "{body}"
                    );
                    assert_eq!(body["sqlstate"], "55P03", "{body}");
                    assert!(body["shard"].is_u64(), "the shard is named: {body}");
                    conflicts += 1;
                }
                other => panic!("round {round}: {other} {body}"),
            }
        }
        // All or nothing: both records hold what one transaction wrote.
        let balance = |key: String| {
            let app = &app;
            async move {
                let body: Value = app
                    .read_strong(&key, "users", &key)
                    .await
                    .json()
                    .await
                    .unwrap();
                body["record"]["data"]["balance"].as_i64()
            }
        };
        let (bx, by) = join(balance(x.clone()), balance(y.clone())).await;
        assert_eq!(
            bx, by,
            "round {round}: x and y were written by different transactions"
        );
    }
    assert!(committed > 0, "no transaction ever committed");
    println!("{ROUNDS} rounds: {committed} committed, {conflicts} answered 409");
}
