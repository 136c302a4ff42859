//! Two-phase commit across a shard primary's crash (`pg_ctl stop -m immediate`):
//!
//! - **before the transaction**: the part on the stopped shard cannot prepare, so the
//!   coordinator rolls back the other: `503 transaction-not-written` naming the shard,
//!   nothing written and nothing left prepared anywhere;
//! - **after the decision** (the gateway, built with `faults`, pauses there): both parts
//!   are prepared and `commit` is logged when the primary dies, so `COMMIT PREPARED`
//!   fails on it. The client is told `503 transaction-committing` naming that shard (the
//!   transaction is committed), and once the primary is back (a prepared transaction
//!   survives a crash) the gateway's recovery commits the part there: the transfer is
//!   fully applied, nothing stays prepared.

use std::time::{Duration, Instant};

use diesel::sql_types::BigInt;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use serde_json::{json, Value};
use test_app::gateway_process::Process;
use test_app::{prepare_database, test_settings};
use test_support::outage::{serial, DropDatabase, Node, Outage};

use crate::support::keys_on;
use crate::txn_support::{self, balance};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(url: &str, sql: &str) -> i64 {
    let mut conn = PgConnection::establish(url).expect("connect");
    diesel::sql_query(sql)
        .get_result::<Count>(&mut conn)
        .unwrap()
        .n
}

fn prepared(url: &str) -> usize {
    txn_support::prepared(url).len()
}

async fn transfer(port: u16, a: &str, b: &str) -> (u16, Value) {
    let body = json!({"operations": [
        {"table": "users", "shard_key": a, "id": a, "data": {"balance": 90}},
        {"table": "users", "shard_key": b, "id": b, "data": {"balance": 10}},
    ]});
    let res = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/transaction"))
        .timeout(Duration::from_secs(30))
        .json(&body)
        .send()
        .await
        .expect("an answer");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_shard_primary_killed_before_or_after_the_decision_leaves_all_or_nothing() {
    let _serial = serial().await;
    let mut settings = test_settings();
    prepare_database(&mut settings).await;
    let db = DropDatabase(settings.cluster.database.dbname.clone());
    let (primaries, meta_url) = txn_support::urls(&settings);
    let (url_a, url_b) = (primaries[0].clone(), primaries[1].clone());
    let keys_a = keys_on(&settings, 0, 2);
    let keys_b = keys_on(&settings, 1, 2);
    let gateway = Process::start(
        &db.0,
        &[
            ("SHARDGATE_FAULT_PAUSE_GATEWAY", "after-decision:4000"),
            // Longer than the pause: the gateway's own recovery leaves the parts alone
            // until the primary is back.
            ("SHARDGATE__SERVER__TXN_IN_DOUBT_MS", "6000"),
            ("SHARDGATE__SERVER__TXN_RECOVERY_MS", "200"),
        ],
    )
    .await;

    // Before: shard 1's primary is down as the transaction starts.
    let (a, b) = (&keys_a[0], &keys_b[0]);
    let outage = Outage::begin(&[Node::Primary(1)]).await;
    let (status, body) = transfer(gateway.port, a, b).await;
    outage.end().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["type"], "urn:shardgate:problem:transaction-not-written",
        "{body}"
    );
    assert_eq!(body["shard"], 1, "{body}");
    assert_eq!((balance(&url_a, a), balance(&url_b, b)), (None, None));
    assert_eq!((prepared(&url_a), prepared(&url_b)), (0, 0));

    // After the decision: both parts prepared, `commit` logged, then the primary dies.
    let (a, b) = (&keys_a[1], &keys_b[1]);
    let port = gateway.port;
    let (a2, b2) = (a.clone(), b.clone());
    let answer = tokio::spawn(async move { transfer(port, &a2, &b2).await });
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(
        &meta_url,
        "SELECT count(*) AS n FROM txn_log WHERE decision = 'commit'",
    ) == 0
    {
        assert!(Instant::now() < deadline, "no decision logged within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(prepared(&url_b), 1, "shard 1's part is prepared");
    let outage = Outage::begin(&[Node::Primary(1)]).await;
    let (status, body) = answer.await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["type"], "urn:shardgate:problem:transaction-committing",
        "{body}"
    );
    assert_eq!(body["shard"], 1, "{body}");
    assert_eq!(balance(&url_a, a), Some(90), "shard 0 committed its part");
    outage.end().await;

    let started = Instant::now();
    while prepared(&url_b) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "shard 1's part still prepared 60 s after its primary came back: {}",
            gateway.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "the prepared part was committed {:?} after its primary came back",
        started.elapsed()
    );
    assert_eq!(
        (balance(&url_a, a), balance(&url_b, b)),
        (Some(90), Some(10))
    );
    assert_eq!(prepared(&url_a), 0);
}
