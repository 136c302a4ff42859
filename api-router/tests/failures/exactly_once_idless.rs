//! Exactly once for records sent without an id, randomized: clients send transactions,
//! plain bulk writes and atomic bulk writes whose records name no id (some mixed with
//! records that do), each request with a fresh `Idempotency-Key`, through HAProxy in
//! front of two gateways, as `setup.sh` configures it (HAProxy itself resends a keyed
//! POST whose gateway answered nothing). The clients also retry the same request with
//! the same key until it is acknowledged. One gateway is killed (-9) right after a
//! commit, before it answers. Every record carries a tag naming its request and
//! position: at the end every tag is stored exactly once across the shards. The seed is
//! printed (`SG_SEED` replays a run).

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use diesel::sql_types::Text;
use diesel::{QueryableByName, RunQueryDsl};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use test_app::gateway_process::Process;
use test_app::{spawn_app, TestApp};
use test_support::outage::serial;

use crate::load_balancer::{low_port, Haproxy};

const CLIENTS: usize = 4;
const REQUESTS_EACH: usize = 20;
const KEYS: usize = 12;
const TRUSTED: (&str, &str) = ("SHARDGATE__SERVER__TRUSTED_PROXIES", "127.0.0.1/32");

#[derive(QueryableByName)]
struct Tag {
    #[diesel(sql_type = Text)]
    tag: String,
}

/// Sends one request through the load balancer until it is acknowledged (200), with
/// the same key each time; whether the acknowledgement was a replay, whole
/// (`idempotency-replayed`) or in part (a plain bulk write killed between its shards'
/// commits: the retry writes the rest and counts the others in `written_before`). A 409
/// `concurrent-conflict` wrote nothing and is sent again, as a client would.
async fn until_acked(http: &reqwest::Client, url: &str, key: &str, body: &Value) -> bool {
    for _ in 0..200 {
        let res = http
            .post(url)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await;
        let Ok(res) = res else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let status = res.status().as_u16();
        let replayed = res.headers().get("idempotency-replayed").is_some();
        let answer: Value = res.json().await.unwrap_or(Value::Null);
        match status {
            200 => {
                let in_part = answer["shards"].as_array().is_some_and(|shards| {
                    shards
                        .iter()
                        .any(|s| s["written_before"].as_u64().is_some_and(|n| n > 0))
                });
                return replayed || in_part;
            }
            // 409: rolled back for a concurrent transaction (two requests crossing on
            // the same records across shards), nothing written: sent again, as told.
            207 | 409 | 429 | 500..=599 => tokio::time::sleep(Duration::from_millis(20)).await,
            _ => panic!("{url} with key {key}: {status} {answer}"),
        }
    }
    panic!("{url} with key {key} never acknowledged");
}

/// One client's requests; the tags it had acknowledged, and how many answers were
/// replays.
async fn client_run(id: usize, seed: u64, lb: String) -> (Vec<String>, usize) {
    let mut rng = StdRng::seed_from_u64(seed ^ (id as u64 + 1));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (mut tags, mut replays) = (Vec::new(), 0);
    for r in 0..REQUESTS_EACH {
        let request = format!("{seed}-{id}-{r}");
        let count = rng.random_range(1..=4);
        let records: Vec<(String, Value)> = (0..count)
            .map(|i| {
                let tag = format!("{request}-{i}");
                let shard_key = format!("idless-{}", rng.random_range(0..KEYS));
                let mut record = json!({"shard_key": shard_key, "data": {"tag": tag}});
                // Now and then a record names its id: ids and id-less records mixed.
                if rng.random_bool(0.2) {
                    record["id"] = json!(format!("named-{tag}"));
                }
                (tag, record)
            })
            .collect();
        let (path, body) = match rng.random_range(0..3) {
            0 => {
                let ops: Vec<Value> = records
                    .iter()
                    .map(|(_, r)| {
                        let mut op = r.clone();
                        op["table"] = json!("orders");
                        op
                    })
                    .collect();
                ("/api/transaction", json!({ "operations": ops }))
            }
            kind => (
                "/api/bulk-write",
                json!({
                    "table": "orders",
                    "atomic": kind == 2,
                    "records": records.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
                }),
            ),
        };
        let key = format!("idless-{request}");
        if until_acked(&http, &format!("{lb}{path}"), &key, &body).await {
            replays += 1;
        }
        tags.extend(records.into_iter().map(|(t, _)| t));
    }
    (tags, replays)
}

/// How many times each tag is stored, across every primary.
fn stored_tags(app: &TestApp) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for shard in 0..app.settings.cluster.shards.len() {
        let mut conn = app.connect(&app.primary(shard));
        let rows: Vec<Tag> = diesel::sql_query(
            "SELECT data->>'tag' AS tag FROM records WHERE table_name = 'orders'",
        )
        .load(&mut conn)
        .expect("the shard's records");
        for row in rows {
            *counts.entry(row.tag).or_default() += 1;
        }
    }
    counts
}

#[tokio::test]
async fn idless_records_retried_through_haproxy_while_a_gateway_dies_are_stored_once() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let seed = crate::support::seed("exactly_once_idless");
    let db = app.settings.cluster.database.dbname.clone();
    let mut armed = Process::start(
        &db,
        &[("SHARDGATE_FAULT_KILL_GATEWAY", "after-commit:15"), TRUSTED],
    )
    .await;
    let sound = Process::start(&db, &[TRUSTED]).await;
    let lb = Haproxy::start(low_port(), &[armed.port, sound.port]);
    let http = reqwest::Client::new();
    for _ in 0..100 {
        let live = http.get(format!("{}/api/health/live", lb.url)).send().await;
        if live.is_ok_and(|r| r.status() == 200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| tokio::spawn(client_run(id, seed, lb.url.clone())))
        .collect();
    let mut acked = Vec::new();
    let mut replays = 0;
    for c in clients {
        let (tags, r) = c.await.expect("a client failed");
        acked.extend(tags);
        replays += r;
    }
    let exit = armed.died_within(Duration::from_secs(5)).await;
    assert_eq!(
        exit.signal(),
        Some(9),
        "the armed gateway died after a commit"
    );
    eprintln!(
        "{} records acknowledged, {replays} answers were replays",
        acked.len()
    );

    let stored = stored_tags(&app);
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "records stored more than once: {twice:?}");
    let missing: Vec<_> = acked.iter().filter(|t| !stored.contains_key(*t)).collect();
    assert!(missing.is_empty(), "acknowledged records lost: {missing:?}");
    assert_eq!(
        stored.len(),
        acked.len(),
        "nothing but what was acknowledged"
    );
    assert!(
        replays >= 1,
        "the killed gateway's request was retried and replayed, whole or in part"
    );
    drop(sound);
}
