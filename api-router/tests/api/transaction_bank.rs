//! The bank invariant, shortened: 100 accounts over the shards, 8 clients moving
//! random amounts between random pairs for 10 s, each transfer a transaction with
//! `if_version` on both accounts (read, then a conditional write) and an
//! `Idempotency-Key`, resent with its key until it has a definite answer. At the end the
//! total is unchanged, every acknowledged transfer was applied exactly once (each
//! account's balance is its opening balance plus the acknowledged transfers' amounts,
//! no more, no less) and nothing is left prepared.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use test_app::TestApp;

use crate::transaction::{prepared, spawn};

const ACCOUNTS: usize = 100;
const OPENING: i64 = 1_000;
const CLIENTS: u64 = 8;
const RUN: Duration = Duration::from_secs(10);

/// An acknowledged transfer: from, to, amount.
type Moved = (usize, usize, i64);

#[derive(Debug, Default)]
struct Tally {
    acknowledged: Vec<Moved>,
    conflicts: u64,
    resent: u64,
    replayed: u64,
    two_phase: u64,
}

/// A strong read of the account: (balance, version). Reads the server failed (a loaded
/// machine: 503, 504) are sent again; they change nothing.
async fn balance(app: &TestApp, key: &str) -> Option<(i64, i64)> {
    for _ in 0..40 {
        let res = app.read_strong(key, "users", key).await;
        match res.status().as_u16() {
            404 => return None,
            200 => {
                let body: Value = res.json().await.unwrap();
                return Some((
                    body["record"]["data"]["balance"].as_i64().unwrap(),
                    body["record"]["version"].as_i64().unwrap(),
                ));
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("{key}: no strong read answered in 40 attempts");
}

fn account(i: usize) -> String {
    format!("acct-{i:03}")
}

/// Sends the transfer with its key until it has a definite answer: Some(replayed,
/// protocol) when committed, None when a condition failed (nothing written).
async fn transfer(
    app: &TestApp,
    key: &str,
    body: &Value,
    tally: &mut Tally,
) -> Option<(bool, String)> {
    for attempt in 0..40 {
        if attempt > 0 {
            tally.resent += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let sent = app
            .post_json_request("/api/transaction", None, body)
            .header("idempotency-key", key)
            .send()
            .await;
        let Ok(res) = sent else { continue };
        let replayed = res.headers().get("idempotency-replayed").is_some();
        match res.status().as_u16() {
            200 => {
                let answer: Value = res.json().await.unwrap();
                return Some((replayed, answer["protocol"].as_str().unwrap().to_owned()));
            }
            409 => return None,
            // In doubt, committing, a shard's failure, a timeout: resent with the key.
            503 | 504 | 429 => continue,
            other => panic!("transfer {key}: {other} {}", res.text().await.unwrap()),
        }
    }
    panic!("transfer {key}: no definite answer after 40 attempts");
}

async fn client(app: Arc<TestApp>, me: u64) -> Tally {
    let mut rng = StdRng::seed_from_u64(0xB4A2C + me);
    let mut tally = Tally::default();
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < RUN {
        let from = rng.random_range(0..ACCOUNTS);
        let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
        let (Some((fb, fv)), Some((tb, tv))) = (
            balance(&app, &account(from)).await,
            balance(&app, &account(to)).await,
        ) else {
            panic!("an account is missing");
        };
        if fb == 0 {
            continue;
        }
        let amount = rng.random_range(1..=fb.min(50));
        let body = json!({"operations": [
            {"table": "users", "shard_key": account(from), "id": account(from),
             "data": {"balance": fb - amount}, "if_version": fv},
            {"table": "users", "shard_key": account(to), "id": account(to),
             "data": {"balance": tb + amount}, "if_version": tv},
        ]});
        n += 1;
        match transfer(&app, &format!("bank-{me}-{n}"), &body, &mut tally).await {
            Some((replayed, protocol)) => {
                tally.replayed += u64::from(replayed);
                tally.two_phase += u64::from(protocol == "two-phase");
                tally.acknowledged.push((from, to, amount));
            }
            None => tally.conflicts += 1,
        }
    }
    tally
}

#[tokio::test]
async fn transfers_under_concurrency_keep_the_total_and_apply_once() {
    let app = Arc::new(spawn().await);
    let opening: Vec<Value> = (0..ACCOUNTS)
        .map(|i| json!({"shard_key": account(i), "id": account(i), "data": {"balance": OPENING}}))
        .collect();
    let res = app
        .bulk(None, &json!({"table": "users", "records": opening}))
        .await;
    assert_eq!(res.status(), 200);
    let mut per_shard: HashMap<_, usize> = HashMap::new();
    for i in 0..ACCOUNTS {
        *per_shard.entry(app.shard_of(&account(i))).or_default() += 1;
    }
    assert_eq!(per_shard.len(), 3, "accounts on every shard: {per_shard:?}");

    let started = Instant::now();
    let clients = (0..CLIENTS).map(|me| tokio::spawn(client(app.clone(), me)));
    let mut all = Tally::default();
    for done in futures_util::future::join_all(clients).await {
        let t = done.expect("a client panicked");
        all.acknowledged.extend(t.acknowledged);
        all.conflicts += t.conflicts;
        all.resent += t.resent;
        all.replayed += t.replayed;
        all.two_phase += t.two_phase;
    }
    let took = started.elapsed();

    let mut expected = vec![OPENING; ACCOUNTS];
    for (from, to, amount) in &all.acknowledged {
        expected[*from] -= amount;
        expected[*to] += amount;
    }
    let mut total = 0;
    for (i, want) in expected.iter().enumerate() {
        let (got, _) = balance(&app, &account(i)).await.expect("an account");
        assert_eq!(
            got,
            *want,
            "{}: every acknowledged transfer applied exactly once",
            account(i)
        );
        total += got;
    }
    assert_eq!(total, OPENING * ACCOUNTS as i64, "the total is unchanged");
    // Recovery resolves parts left by abandoned attempts within its bound (500 ms).
    let deadline = Instant::now() + Duration::from_secs(10);
    while prepared(&app) > 0 {
        assert!(Instant::now() < deadline, "still prepared after 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        all.acknowledged.len() > 20,
        "too few transfers to mean anything: {all:?}"
    );
    assert!(all.two_phase > 0);
    eprintln!(
        "bank: {} transfers acknowledged ({} on two shards, {} answered as replays) and {} refused by a condition in {took:?}; {} resends",
        all.acknowledged.len(),
        all.two_phase,
        all.replayed,
        all.conflicts,
        all.resent
    );
}
