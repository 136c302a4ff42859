//! A shard without the schema (migrations not applied): the gateway names it in
//! /api/health, requests to it answer 503 naming the shard, the missing migrations and
//! the command, nothing is written, other shards work, and once migrated it serves again
//! without a restart.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use serde_json::{json, Value};
use test_app::{assert_problem, spawn_app, TestApp};

/// A key on `shard`, found by routing.
fn key_on(app: &TestApp, shard: u32) -> String {
    (0..)
        .map(|i| format!("schema-{i}"))
        .find(|k| app.shard_of(k).0 == shard)
        .unwrap()
}

#[tokio::test]
async fn a_shard_without_its_schema_is_named_and_refused_until_migrated() {
    let app = spawn_app().await;
    let (bare, good) = (key_on(&app, 1), key_on(&app, 0));
    // Undo every migration on shard 1's primary (the replica follows).
    let mut conn = app.connect(&app.primary(1));
    conn.batch_execute(
        "DROP TABLE records; DROP SEQUENCE record_version_seq; \
         DROP TABLE __diesel_schema_migrations; \
         DROP TABLE shardgate_slots, shardgate_map CASCADE; \
         DROP FUNCTION shardgate_claim(integer), shardgate_claim(integer[]), \
                       shardgate_serves(integer), shardgate_owns(integer); \
         DROP TABLE shardgate_cache, shardgate_moving, shardgate_move_log; \
         DROP FUNCTION shardgate_capture_new(), shardgate_capture_old(); \
         DROP TABLE shardgate_idempotency; DROP FUNCTION shardgate_idempotency_taken(); \
         DROP TABLE shardgate_idempotency_records, shardgate_idempotency_claims; \
         DROP FUNCTION shardgate_txn_lock(integer, text, text, text, bigint, integer), \
                       shardgate_txn_seen(text, text, text, text, text, bigint, integer), \
                       shardgate_txn_remember(text, text, bytea, integer, text, text, text, \
                                              bigint, boolean); \
         DROP TABLE shardgate_changes, shardgate_changes_pruned; \
         DROP FUNCTION shardgate_log_upserts(), shardgate_log_deletes()",
    )
    .unwrap();
    let write = |key: String| {
        let app = &app;
        async move {
            app.write(
                &key,
                &json!({"table": "users", "id": "r", "data": {"v": 1}}),
            )
            .await
        }
    };

    // Refused with the shard and the fix named, whether or not the monitor noticed yet.
    let problem = assert_problem(write(bare.clone()).await, 503).await;
    assert_eq!(problem["type"], "urn:shardgate:problem:schema-missing");
    assert_eq!(problem["shard"], 1);
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("shard-1") && detail.contains("shard-admin migrate"),
        "{detail}"
    );

    // The monitor names the missing migrations in /api/health and in every refusal.
    let deadline = Instant::now() + Duration::from_secs(3);
    let health = loop {
        let health: Value = app.get_json("/api/health").await;
        if health["shards"][1]["schema"]["state"] == "missing" {
            break health;
        }
        assert!(
            Instant::now() < deadline,
            "health never named the shard: {health}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(health["healthy"], false);
    assert_eq!(
        health["shards"][1]["schema"]["missing"][0],
        "2026-11-22-000001_create_records"
    );
    assert_eq!(health["shards"][0]["schema"]["state"], "complete");
    let problem = assert_problem(app.read(&bare, "users", "r").await, 503).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("2026-11-22-000002_list_order"), "{detail}");
    let fan_out = app
        .client
        .get(app.url("/api/read?table=users"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        fan_out.status().as_u16(),
        206,
        "a fan-out names the shard as failed"
    );

    // Other shards work.
    assert_eq!(write(good).await.status().as_u16(), 201);

    // Migrated by the admin command's code: served again within 2 s, no restart.
    let settings = app.settings.cluster.clone();
    tokio::task::spawn_blocking(move || shard_admin::migrate_all(&settings))
        .await
        .unwrap()
        .unwrap();
    let migrated = Instant::now();
    loop {
        let res = write(bare.clone()).await;
        if res.status().as_u16() == 201 {
            break;
        }
        assert!(
            migrated.elapsed() < Duration::from_secs(2),
            "still refused 2 s after migrating: {}",
            res.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
