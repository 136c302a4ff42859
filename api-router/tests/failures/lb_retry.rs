//! A gateway dying between commit and answer, behind HAProxy configured as `setup.sh`
//! configures it: a write sent with an `Idempotency-Key` is retried by HAProxy on the
//! other gateway, which answers from the shard's stored answer, so the client sees a
//! plain success and the write happened once. A write without a key is not retried
//! (sending it twice could write twice): the client gets 502 or a closed connection,
//! though it committed.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use serde_json::json;
use shard_manager::servers::connection_url;
use test_app::gateway_process::Process;
use test_app::{prepare_database, test_settings};
use test_support::outage::{serial, DropDatabase};

use crate::load_balancer::{low_port, Haproxy};

/// HAProxy's PROXY protocol believed from loopback, as `setup.sh` starts the gateways.
const TRUSTED: (&str, &str) = ("SHARDGATE__SERVER__TRUSTED_PROXIES", "127.0.0.1/32");
const ARMED: [(&str, &str); 2] = [("SHARDGATE_FAULT_KILL_GATEWAY", "after-commit"), TRUSTED];

#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = BigInt)]
    version: i64,
}

/// An armed gateway and a sound one behind a fresh HAProxy, once it answers.
async fn pair(db: &str) -> (Process, Process, Haproxy) {
    let armed = Process::start(db, &ARMED).await;
    let sound = Process::start(db, &[TRUSTED]).await;
    let lb = Haproxy::start(low_port(), &[armed.port, sound.port]);
    let client = reqwest::Client::new();
    for _ in 0..100 {
        let live = client
            .get(format!("{}/api/health/live", lb.url))
            .send()
            .await;
        if live.is_ok_and(|r| r.status() == 200) {
            return (armed, sound, lb);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("HAProxy never answered:\n{}", lb.log());
}

/// Four writes through `lb` (ids `{prefix}0`..), one at a time; each one's status (0:
/// no answer), id, version and whether it was a replay.
async fn four_writes(
    lb: &Haproxy,
    prefix: &str,
    keyed: bool,
) -> Vec<(u16, String, Option<i64>, bool)> {
    let client = reqwest::Client::new();
    let mut seen = Vec::new();
    for i in 0..4 {
        let id = format!("{prefix}{i}");
        let mut req = client
            .post(format!("{}/api/write", lb.url))
            .header("x-shard-key", "lb-retry")
            .json(&json!({"table": "users", "id": id, "data": {"i": i}}));
        if keyed {
            req = req.header("idempotency-key", format!("key-{id}"));
        }
        let Ok(res) = req.send().await else {
            // HAProxy closes the client's connection rather than answer 502 when the
            // gateway closed a reused connection: the client cannot tell either way.
            seen.push((0, id, None, false));
            continue;
        };
        let status = res.status().as_u16();
        let replayed = res.headers().get("idempotency-replayed").is_some();
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        seen.push((status, id, body["version"].as_i64(), replayed));
    }
    seen
}

fn stored(url: &str, prefix: &str) -> Vec<Stored> {
    let mut conn = PgConnection::establish(url).expect("connect");
    diesel::sql_query(
        "SELECT id, version FROM records WHERE shard_key = 'lb-retry' AND id LIKE $1 ORDER BY id",
    )
    .bind::<Text, _>(format!("{prefix}%"))
    .load(&mut conn)
    .expect("records")
}

#[tokio::test]
async fn haproxy_retries_a_keyed_write_whose_gateway_died_and_not_one_without_a_key() {
    let _serial = serial().await;
    let mut settings = test_settings();
    prepare_database(&mut settings).await;
    let db = DropDatabase(settings.cluster.database.dbname.clone());
    let router = settings.cluster.validate().unwrap();
    let shard = router
        .route(shard_manager::ShardKey::parse("lb-retry").unwrap())
        .unwrap()
        .shard();
    let primary = &settings.cluster.shards[shard.index()].primary;
    let url = connection_url(&settings.cluster.database, primary);

    // With keys: every write succeeds, the one whose gateway died as a replay.
    let (mut armed, _sound, lb) = pair(&db.0).await;
    let seen = four_writes(&lb, "k", true).await;
    let exit = armed.died_within(Duration::from_secs(5)).await;
    assert_eq!(
        exit.signal(),
        Some(9),
        "the armed gateway died: {}",
        armed.output()
    );
    assert!(seen.iter().all(|s| s.0 == 201), "{seen:?}\n{}", lb.log());
    let replays = seen.iter().filter(|s| s.3).count();
    assert_eq!(
        replays, 1,
        "one write was answered by the other gateway: {seen:?}"
    );
    let rows = stored(&url, "k");
    assert_eq!(rows.len(), 4);
    for (row, (_, id, version, _)) in rows.iter().zip(&seen) {
        assert_eq!(
            (&row.id, Some(row.version)),
            (id, *version),
            "written once, as answered"
        );
    }
    drop(lb);

    // Without keys: the write that reached the dying gateway gets 502, yet committed.
    let (mut armed, _sound, lb) = pair(&db.0).await;
    let seen = four_writes(&lb, "n", false).await;
    assert_eq!(
        armed.died_within(Duration::from_secs(5)).await.signal(),
        Some(9)
    );
    let failed: Vec<_> = seen.iter().filter(|s| s.0 != 201).collect();
    assert_eq!(failed.len(), 1, "{seen:?}");
    assert!(matches!(failed[0].0, 0 | 502), "not retried: {seen:?}");
    let rows = stored(&url, "n");
    assert_eq!(rows.len(), 4, "the unanswered write committed all the same");
}
