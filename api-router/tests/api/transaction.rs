//! `POST /api/transaction`: a transfer between two shards commits on both; a failed
//! condition changes nothing anywhere; every bad input names its operation; prepared
//! parts left by a dead coordinator are resolved by a gateway's recovery by the log.
//!
//! Two-phase commit needs `max_prepared_transactions` on the shards, which `setup.sh`
//! sets on every server of the shared topology. Optionally,
//! `SHARDGATE_2PC_SERVERS=host:port,host:port,host:port,host:port` points the three
//! shards (no replicas) and the metadata database at other servers that have it.

use std::time::{Duration, Instant};

use diesel::sql_types::BigInt;
use diesel::{QueryableByName, RunQueryDsl};
use serde_json::{json, Value};
use shard_manager::cluster::txn::gid;
use shard_manager::cluster::txn::log::Decision;
use shard_manager::store::{NewRecord, RawJson};
use shard_manager::wire::write::txn::{run_part, PartEnd, PartOp, PartOutcome};
use test_app::{assert_problem, spawn_app_with, TestApp};

pub(crate) async fn spawn() -> TestApp {
    spawn_app_with(|s| {
        if let Ok(servers) = std::env::var("SHARDGATE_2PC_SERVERS") {
            let servers: Vec<&str> = servers.split(',').collect();
            for (shard, addr) in s.cluster.shards.iter_mut().zip(&servers) {
                shard.primary = (*addr).to_owned();
                shard.replicas.clear();
            }
            s.cluster.metadata.address = servers[3].to_owned();
            s.cluster.cache.enabled = false;
        }
        s.server.txn_in_doubt_ms = 500;
        s.server.txn_recovery_ms = 200;
    })
    .await
}

/// Two keys on different shards.
pub(crate) fn two_shards(app: &TestApp) -> (String, String) {
    let a = "acct-a".to_owned();
    let b = (0..1000)
        .map(|i| format!("acct-b{i}"))
        .find(|k| app.shard_of(k) != app.shard_of(&a))
        .unwrap();
    (a, b)
}

pub(crate) fn upsert(key: &str, balance: i64, if_version: Option<i64>) -> Value {
    let mut op = json!({"op": "upsert", "table": "users", "shard_key": key, "id": key,
                        "data": {"balance": balance}});
    if let Some(v) = if_version {
        op["if_version"] = json!(v);
    }
    op
}

async fn txn(app: &TestApp, ops: Vec<Value>) -> reqwest::Response {
    app.post_json("/api/transaction", None, &json!({ "operations": ops }))
        .await
}

pub(crate) async fn balance(app: &TestApp, key: &str) -> Option<(i64, i64)> {
    let res = app.read_strong(key, "users", key).await;
    if res.status() == 404 {
        return None;
    }
    let body: Value = res.json().await.unwrap();
    Some((
        body["record"]["data"]["balance"].as_i64().unwrap(),
        body["record"]["version"].as_i64().unwrap(),
    ))
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Prepared transactions of the test's database on every primary.
pub(crate) fn prepared(app: &TestApp) -> i64 {
    (0..app.settings.cluster.shards.len())
        .map(|i| {
            let mut conn = app.connect(&app.primary(i));
            diesel::sql_query(
                "SELECT count(*) AS n FROM pg_prepared_xacts WHERE database = current_database()",
            )
            .get_result::<Count>(&mut conn)
            .unwrap()
            .n
        })
        .sum()
}

#[tokio::test]
async fn a_transfer_between_two_shards_commits_on_both() {
    let app = spawn().await;
    let (a, b) = two_shards(&app);
    let res = txn(&app, vec![upsert(&a, 100, Some(0)), upsert(&b, 0, Some(0))]).await;
    assert_eq!(res.status(), 200);
    let opened: Value = res.json().await.unwrap();
    assert_eq!(opened["protocol"], "two-phase");
    assert_eq!(opened["shards"].as_array().unwrap().len(), 2);
    let va = opened["results"][0]["version"].as_i64().unwrap();
    let vb = opened["results"][1]["version"].as_i64().unwrap();
    assert_eq!(opened["results"][0]["created"], true);

    let res = txn(
        &app,
        vec![upsert(&a, 90, Some(va)), upsert(&b, 10, Some(vb))],
    )
    .await;
    assert_eq!(res.status(), 200);
    let moved: Value = res.json().await.unwrap();
    let (na, nb) = (
        moved["results"][0]["version"].as_i64().unwrap(),
        moved["results"][1]["version"].as_i64().unwrap(),
    );
    assert!(na > va && nb > vb, "{moved}");
    assert_eq!(balance(&app, &a).await, Some((90, na)));
    assert_eq!(balance(&app, &b).await, Some((10, nb)));
    assert_eq!(prepared(&app), 0, "nothing left prepared");

    // One shard: one round, no 2PC.
    let res = txn(&app, vec![upsert(&a, 80, Some(na))]).await;
    let one: Value = res.json().await.unwrap();
    assert_eq!(one["protocol"], "one-shard", "{one}");
    assert_eq!(balance(&app, &a).await.unwrap().0, 80);
}

#[tokio::test]
async fn a_failed_condition_changes_nothing_on_any_shard() {
    let app = spawn().await;
    let (a, b) = two_shards(&app);
    let res = txn(&app, vec![upsert(&a, 100, Some(0)), upsert(&b, 0, Some(0))]).await;
    let opened: Value = res.json().await.unwrap();
    let va = opened["results"][0]["version"].as_i64().unwrap();
    let vb = opened["results"][1]["version"].as_i64().unwrap();

    // b's condition is stale: a's part may prepare, and is rolled back.
    let res = txn(
        &app,
        vec![upsert(&a, 0, Some(va)), upsert(&b, 100, Some(vb - 1))],
    )
    .await;
    let problem = assert_problem(res, 409).await;
    assert_eq!(problem["type"], "urn:shardgate:problem:condition-failed");
    assert_eq!(problem["operation"], 1);
    assert_eq!(problem["current_version"], vb);
    assert!(
        problem["detail"].as_str().unwrap().contains(&b),
        "{problem}"
    );
    // A delete that expects an absent record that exists fails the same way.
    let res = txn(
        &app,
        vec![json!({"op": "delete", "table": "users", "shard_key": &a, "id": &a, "if_version": 0})],
    )
    .await;
    let problem = assert_problem(res, 409).await;
    assert_eq!(problem["current_version"], va);
    assert_eq!(balance(&app, &a).await, Some((100, va)));
    assert_eq!(balance(&app, &b).await, Some((0, vb)));
    assert_eq!(prepared(&app), 0);
}

#[tokio::test]
async fn every_bad_input_names_its_operation_and_writes_nothing() {
    let app = spawn().await;
    let (a, b) = two_shards(&app);
    let ok = upsert(&a, 1, None);
    let cases: Vec<(Vec<Value>, u16, &str, Option<usize>)> = vec![
        (vec![], 422, "empty-transaction", None),
        (
            (0..101)
                .map(|i| upsert(&format!("k{i}"), 1, None))
                .collect(),
            413,
            "too-many-operations",
            Some(100),
        ),
        (
            vec![ok.clone(), upsert(&b, 1, None), upsert(&a, 2, None)],
            422,
            "invalid-operation",
            Some(2),
        ),
        (
            vec![
                ok.clone(),
                json!({"table": "nope", "shard_key": &b, "data": {}}),
            ],
            422,
            "invalid-operation",
            Some(1),
        ),
        (
            vec![upsert(&b, 1, Some(-1)), ok.clone()],
            422,
            "invalid-operation",
            Some(0),
        ),
        (
            vec![
                ok.clone(),
                json!({"table": "users", "shard_key": &b, "data": {}, "if_version": "3"}),
            ],
            422,
            "invalid-operation",
            Some(1),
        ),
        (
            vec![
                ok.clone(),
                json!({"table": "users", "shard_key": "", "data": {}}),
            ],
            422,
            "invalid-operation",
            Some(1),
        ),
        (
            vec![
                ok.clone(),
                json!({"op": "delete", "table": "users", "shard_key": &b}),
            ],
            422,
            "invalid-operation",
            Some(1),
        ),
        // An operation larger than a single write's body may be.
        (
            vec![
                ok.clone(),
                json!({"table": "users", "shard_key": &b,
                       "data": {"blob": "x".repeat(app.settings.server.max_body_bytes)}}),
            ],
            422,
            "invalid-operation",
            Some(1),
        ),
    ];
    for (ops, status, slug, operation) in cases {
        let res = txn(&app, ops).await;
        let problem = assert_problem(res, status).await;
        if problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("as a single write"))
        {
            assert!(
                problem["detail"].as_str().unwrap().contains(&format!(
                    "at most {} bytes",
                    app.settings.server.max_body_bytes
                )),
                "{problem}"
            );
        }
        assert_eq!(
            problem["type"],
            format!("urn:shardgate:problem:{slug}"),
            "{problem}"
        );
        assert_eq!(
            problem["operation"].as_u64(),
            operation.map(|o| o as u64),
            "{problem}"
        );
    }
    assert_eq!(balance(&app, &a).await, None, "nothing written");
    assert_eq!(balance(&app, &b).await, None, "nothing written");
}

/// What a coordinator killed after PREPARE (nothing logged) or after its logged
/// decision leaves behind: parts prepared on two shards. The gateway's recovery
/// resolves both by the log, all or nothing, and nothing stays prepared.
#[tokio::test]
async fn recovery_resolves_what_a_dead_coordinator_left_prepared() {
    let app = spawn().await;
    let (a, b) = two_shards(&app);
    let (log, _) = app.cluster.decision_log().expect("a coordinator log");
    let started = Instant::now();
    let mut txids = Vec::new();
    for (round, decided) in [(1, Some(Decision::Commit)), (2, None)] {
        let txid = gid::new_txid();
        let mut shards = Vec::new();
        for key in [&a, &b] {
            let id = format!("{key}-{round}");
            let data = RawJson::from_value(&json!({"balance": round}));
            let routed = app
                .cluster
                .router()
                .route(shard_manager::ShardKey::parse(key).unwrap())
                .unwrap();
            let shard = app.cluster.shard(routed.shard()).unwrap();
            let name = gid::gid(&txid, shard.id);
            let ops = [PartOp {
                rec: NewRecord {
                    table_name: "users",
                    shard_key: key,
                    id: &id,
                    slot: routed.slot().0 as i32,
                    data: &data,
                },
                delete: false,
                expected: Some(0),
                index: 0,
            }];
            let out = shard
                .primary
                .run_write(async |c| {
                    run_part(
                        c,
                        &ops,
                        PartEnd::Prepare {
                            gid: &name,
                            lock_timeout_ms: 0,
                        },
                        None,
                    )
                    .await
                })
                .await
                .expect("prepared");
            assert!(matches!(out, PartOutcome::Done { position: None, .. }));
            shards.push(shard.id);
        }
        if let Some(d) = decided {
            assert_eq!(log.settle(&txid, d, &shards).await.unwrap(), d);
        }
        txids.push(txid);
    }
    assert_eq!(prepared(&app), 4);
    // The bound is 500 ms and a round runs every 200 ms.
    let deadline = Instant::now() + Duration::from_secs(10);
    while prepared(&app) > 0 {
        assert!(Instant::now() < deadline, "still prepared after 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resolved_in = started.elapsed();
    assert!(resolved_in >= Duration::from_millis(500), "{resolved_in:?}");
    for key in [&a, &b] {
        let committed = app.read_strong(key, "users", &format!("{key}-1")).await;
        assert_eq!(
            committed.status(),
            200,
            "the logged commit is applied on every shard"
        );
        let rolled_back = app.read_strong(key, "users", &format!("{key}-2")).await;
        assert_eq!(
            rolled_back.status(),
            404,
            "the undecided one is rolled back on every shard"
        );
    }
    let decided = log.decisions(&txids).await.unwrap();
    assert_eq!(decided.get(&txids[0]), Some(&Decision::Commit));
    assert_eq!(
        decided.get(&txids[1]),
        Some(&Decision::Abort),
        "the recovery logged its abort"
    );
    let health = app.get_json("/api/health").await;
    assert_eq!(health["in_doubt_transactions"], 0, "{health}");
}
