//! A schema change under a running gateway: its connections prepared their statements
//! before it, and PostgreSQL refuses the old plans once a returned column's type changed
//! (SQLSTATE 0A000, "cached plan must not change result type"). The gateway prepares
//! them again and retries once, so writes, reads and lists go on without a restart.

use diesel::connection::SimpleConnection;
use serde_json::{json, Value};
use test_app::{spawn_app, TestApp};

fn key_on(app: &TestApp, shard: u32) -> String {
    (0..)
        .map(|i| format!("replan-{i}"))
        .find(|k| app.shard_of(k).0 == shard)
        .unwrap()
}

async fn every_statement_works(app: &TestApp, key: &str, round: u32) {
    let id = format!("r{round}");
    let res = app
        .write(
            key,
            &json!({"table": "events", "id": id, "data": {"round": round}}),
        )
        .await;
    assert!(
        res.status().is_success(),
        "write: {}",
        res.text().await.unwrap()
    );
    let res = app
        .post_json_request(
            "/api/write",
            Some(key),
            &json!({"table": "events", "id": id, "data": {"round": round, "again": true}}),
        )
        .header("idempotency-key", format!("replan-{round}"))
        .send()
        .await
        .unwrap();
    assert!(
        res.status().is_success(),
        "keyed write: {}",
        res.text().await.unwrap()
    );
    let res = app
        .bulk(
            Some(key),
            &json!({"table": "events", "records": [{"id": format!("b{round}"), "data": {"round": round}}]}),
        )
        .await;
    assert_eq!(res.status(), 200, "bulk: {}", res.text().await.unwrap());

    let res = app.read_strong(key, "events", &id).await;
    assert_eq!(res.status(), 200, "read: {}", res.text().await.unwrap());
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["record"]["data"],
        json!({"round": round, "again": true})
    );
    let res = app
        .get(key, "/api/read?table=events&consistency=strong")
        .await;
    assert_eq!(res.status(), 200, "list: {}", res.text().await.unwrap());
    let res = app.delete(key, "events", &format!("b{round}")).await;
    assert_eq!(res.status(), 204, "delete: {}", res.text().await.unwrap());
}

#[tokio::test]
async fn statements_are_prepared_again_after_a_schema_change() {
    let app = spawn_app().await;
    let key = key_on(&app, 0);
    // Every connection the gateway opens prepares its statements on first use.
    for round in 0..3 {
        every_statement_works(&app, &key, round).await;
    }

    // A migration pins updated_at's precision (the values stay the same), so every
    // statement that returns it has a new result type.
    app.connect(&app.primary(0))
        .batch_execute("ALTER TABLE records ALTER COLUMN updated_at TYPE timestamptz(6)")
        .unwrap();

    for round in 3..10 {
        every_statement_works(&app, &key, round).await;
    }
}
