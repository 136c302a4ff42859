//! An `Idempotency-Key`'s answer moves with its slot: a write retried after its slot
//! moved to another shard is answered from the new owner and written nothing again; the
//! old owner keeps no entry once the move is clean.

use diesel::sql_types::BigInt;
use diesel::{QueryableByName, RunQueryDsl};
use serde_json::{json, Value};
use shard_manager::ShardKey;
use test_app::{spawn_app, TestApp};
use test_support::outage::serial;

use crate::movers::{assert_done, move_id, mover_process};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Idempotency entries on `shard`'s primary.
fn entries_on(app: &TestApp, shard: usize) -> i64 {
    let mut conn = app.connect(&app.primary(shard));
    diesel::sql_query("SELECT count(*) AS n FROM shardgate_idempotency")
        .get_result::<Count>(&mut conn)
        .expect("count entries")
        .n
}

async fn write_with_key(
    app: &TestApp,
    shard_key: &str,
    key: &str,
    body: &Value,
) -> (u16, Value, bool) {
    let res = app
        .post_json_request("/api/write", Some(shard_key), body)
        .header("idempotency-key", key)
        .send()
        .await
        .expect("write");
    let status = res.status().as_u16();
    let replayed = res.headers().get("idempotency-replayed").is_some();
    (status, res.json().await.expect("JSON"), replayed)
}

#[tokio::test]
async fn a_retry_after_its_slot_moved_is_answered_by_the_new_owner() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let settings = app.settings.cluster.clone();
    let shard_key = (0..)
        .map(|i| format!("moved-key-{i}"))
        .find(|k| app.shard_of(k).index() == 0)
        .unwrap();
    let slot = app
        .router()
        .route(ShardKey::parse(&shard_key).unwrap())
        .unwrap()
        .slot()
        .0;
    let body = json!({"table": "users", "data": {"n": 1}});
    let (status, first, _) = write_with_key(&app, &shard_key, "before-the-move", &body).await;
    assert_eq!(status, 201);
    assert_eq!(entries_on(&app, 0), 1);

    let moved = mover_process(
        &settings.database.dbname,
        &format!("startslots:0:1:{slot}"),
        None,
    )
    .await;
    assert!(moved.success, "{}", moved.output);
    assert_done(&settings, move_id(&moved.output)).await;
    assert_eq!(entries_on(&app, 1), 1, "the entry moved with its slot");
    assert_eq!(entries_on(&app, 0), 0, "and left the old owner");

    let (status, again, replayed) =
        write_with_key(&app, &shard_key, "before-the-move", &body).await;
    assert_eq!(status, 201);
    assert!(replayed, "answered from the new owner: {again}");
    assert_eq!(again["shard"], 1);
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["version"], first["version"], "not written again");

    let other = json!({"table": "users", "data": {"n": 2}});
    let (status, problem, _) = write_with_key(&app, &shard_key, "before-the-move", &other).await;
    assert_eq!(status, 422, "{problem}");
}
