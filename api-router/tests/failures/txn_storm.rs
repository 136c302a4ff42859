//! The bank invariant under a storm (issue #31's test): 100 accounts over three shards,
//! 8 clients moving random amounts between random pairs for 30 s through two gateways,
//! each transfer a transaction with `if_version` on both accounts and an
//! `Idempotency-Key`, resent (to either gateway) until it has a definite answer.
//! Meanwhile:
//!
//! - the second gateway is killed (-9) at each fault point in turn (`after-prepare`,
//!   `after-decision`, `between-commits`), a fresh one armed with the next point taking
//!   its place each time;
//! - slots holding accounts move from shard 0 to shard 2;
//! - shard 1's primary is stopped (`pg_ctl stop -m immediate`) for 3 s mid-transfer.
//!
//! At the end, read straight from the primaries: the total is unchanged; every
//! account's balance is its opening balance plus the acknowledged transfers, each
//! applied exactly once; every account is stored once, on its owner; nothing is left
//! prepared on any shard; and the parts the kill after PREPARE left undecided were
//! given an `abort` in the coordinator log before they were rolled back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use shard_manager::ShardKey;
use test_app::gateway_process::Process;
use test_app::{prepare_database, test_settings};
use test_support::outage::{serial, DropDatabase, Node, Outage};

use crate::movers::{assert_done, move_id, mover_process};
use crate::txn_support::{self, logged, prepared, RollBackLeftovers};

const ACCOUNTS: usize = 100;
const OPENING: i64 = 1_000;
const CLIENTS: u64 = 8;
const RUN: Duration = Duration::from_secs(30);
const KILL_POINTS: [&str; 3] = ["after-prepare", "after-decision", "between-commits"];
/// Recovery settles parts older than 500 ms, looking every 200 ms.
const FAST_RECOVERY: [(&str, &str); 2] = [
    ("SHARDGATE__SERVER__TXN_IN_DOUBT_MS", "500"),
    ("SHARDGATE__SERVER__TXN_RECOVERY_MS", "200"),
];

fn account(i: usize) -> String {
    format!("acct-{i:03}")
}

/// The two gateways' ports: the stable one, and the one the storm kills and replaces.
struct Ports {
    stable: u16,
    doomed: AtomicU16,
}

impl Ports {
    fn pick(&self, attempt: usize) -> u16 {
        match attempt % 2 {
            0 => self.doomed.load(Ordering::Relaxed),
            _ => self.stable,
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    acknowledged: Vec<(usize, usize, i64)>,
    refused: u64,
    resent: u64,
    replayed: u64,
}

/// A strong read of the account: (balance, version), from whichever gateway answers.
async fn balance(http: &reqwest::Client, ports: &Ports, key: &str) -> (i64, i64) {
    for attempt in 0..200 {
        let url = format!(
            "http://127.0.0.1:{}/api/read?table=users&id={key}&consistency=strong",
            ports.pick(attempt)
        );
        let sent = http
            .get(url)
            .header("x-shard-key", key)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        if let Ok(res) = sent {
            if res.status().as_u16() == 200 {
                let body: Value = res.json().await.unwrap();
                return (
                    body["record"]["data"]["balance"].as_i64().unwrap(),
                    body["record"]["version"].as_i64().unwrap(),
                );
            }
            assert_ne!(res.status().as_u16(), 404, "{key} is missing");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{key}: no strong read answered in 200 attempts");
}

/// The problem type's last segment of an error answer.
async fn problem(res: reqwest::Response) -> String {
    let body: Value = res.json().await.unwrap_or_default();
    let kind = body["type"].as_str().unwrap_or_default();
    kind.rsplit(':').next().unwrap_or_default().to_owned()
}

/// Sends the transfer with its key until it has a definite answer: true when
/// committed, false when refused (a condition or a conflict: nothing written).
async fn transfer(
    http: &reqwest::Client,
    ports: &Ports,
    key: &str,
    body: &Value,
    tally: &mut Tally,
) -> bool {
    for attempt in 0..300 {
        if attempt > 0 {
            tally.resent += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let sent = http
            .post(format!(
                "http://127.0.0.1:{}/api/transaction",
                ports.pick(attempt)
            ))
            .header("idempotency-key", key)
            .timeout(Duration::from_secs(15))
            .json(body)
            .send()
            .await;
        let Ok(res) = sent else { continue };
        let replayed = res.headers().get("idempotency-replayed").is_some();
        match res.status().as_u16() {
            200 => {
                tally.replayed += u64::from(replayed);
                return true;
            }
            // A condition that failed: nothing written, by this attempt or any other
            // (an earlier attempt that committed would have been replayed).
            409 => match problem(res).await.as_str() {
                "condition-failed" => return false,
                // A lock not granted in time, a deadlock: this attempt wrote nothing,
                // but an earlier attempt with the key may still be in doubt (its parts
                // prepared, holding the rows) and commit later: not an answer, resent.
                _ => continue,
            },
            // In doubt, committing, a shard down, a timeout: resent with the key.
            503 | 504 | 429 => continue,
            other => panic!("transfer {key}: {other} {}", res.text().await.unwrap()),
        }
    }
    panic!("transfer {key}: no definite answer after 300 attempts");
}

async fn client(ports: Arc<Ports>, me: u64) -> Tally {
    let http = reqwest::Client::new();
    let mut rng = StdRng::seed_from_u64(0x5702 + me);
    let mut tally = Tally::default();
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < RUN {
        let from = rng.random_range(0..ACCOUNTS);
        let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
        let (fb, fv) = balance(&http, &ports, &account(from)).await;
        let (tb, tv) = balance(&http, &ports, &account(to)).await;
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
        let key = format!("storm-{me}-{n}");
        match transfer(&http, &ports, &key, &body, &mut tally).await {
            true => tally.acknowledged.push((from, to, amount)),
            false => tally.refused += 1,
        }
    }
    tally
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = BigInt)]
    balance: i64,
}

/// Every account row stored on `url`: (id, balance).
fn accounts_on(url: &str) -> Vec<(String, i64)> {
    let mut conn = PgConnection::establish(url).expect("connect to a primary");
    diesel::sql_query(
        "SELECT id, (data->>'balance')::bigint AS balance FROM records \
         WHERE table_name = 'users' AND id LIKE 'acct-%'",
    )
    .load::<Row>(&mut conn)
    .expect("read the accounts")
    .into_iter()
    .map(|r| (r.id, r.balance))
    .collect()
}

#[tokio::test]
async fn transfers_keep_the_total_through_gateway_kills_a_slot_move_and_a_primary_stop() {
    let _serial = serial().await;
    let mut settings = test_settings();
    prepare_database(&mut settings).await;
    let db = DropDatabase(settings.cluster.database.dbname.clone());
    let (primaries, meta_url) = txn_support::urls(&settings);
    let urls = primaries[..3].to_vec();
    let _leftovers = RollBackLeftovers(urls.clone());
    let router = settings.cluster.validate().expect("valid settings");
    let route = |i: usize| router.route(ShardKey::parse(&account(i)).unwrap()).unwrap();

    let stable = Process::start(&db.0, &FAST_RECOVERY).await;
    let armed = |point: &'static str| {
        let mut env = vec![("SHARDGATE_FAULT_KILL_GATEWAY", point)];
        // The dying gateway's own recovery must leave its parts to the other.
        env.push(("SHARDGATE__SERVER__TXN_IN_DOUBT_MS", "600000"));
        env
    };
    let doomed = Process::start(&db.0, &armed(KILL_POINTS[0])).await;
    let ports = Arc::new(Ports {
        stable: stable.port,
        doomed: AtomicU16::new(doomed.port),
    });

    let opening: Vec<Value> = (0..ACCOUNTS)
        .map(|i| json!({"shard_key": account(i), "id": account(i), "data": {"balance": OPENING}}))
        .collect();
    let res = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/api/bulk-write", stable.port))
        .json(&json!({"table": "users", "records": opening}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let mut on_shard0: Vec<i32> = (0..ACCOUNTS)
        .map(route)
        .filter(|r| r.shard().index() == 0)
        .map(|r| i32::try_from(r.slot().0).unwrap())
        .collect();
    on_shard0.sort_unstable();
    on_shard0.dedup();
    let moving: Vec<i32> = on_shard0.into_iter().take(8).collect();
    assert_eq!(moving.len(), 8, "accounts on shard 0");

    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|me| tokio::spawn(client(ports.clone(), me)))
        .collect();

    // The storm. Each armed gateway dies at the first transaction on two shards it
    // coordinates that reaches its point; the next one takes its port's place.
    let mut doomed = doomed;
    let mut kills = Vec::new();
    let mut left = Vec::new();
    for (i, point) in KILL_POINTS.iter().enumerate() {
        let exit = doomed.died_within(Duration::from_secs(20)).await;
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit.signal(), Some(9), "{point}: {}", doomed.output());
        assert!(doomed.output().contains(&format!("fault point {point}")));
        kills.push((*point, started.elapsed()));
        // What the dead coordinator left prepared (with parts of transactions the other
        // gateway has in flight), and which of those had no decision yet.
        let txids: Vec<String> = urls
            .iter()
            .flat_map(|u| prepared(u))
            .filter_map(|g| shard_manager::cluster::txn::gid::parse(&g).map(|(t, _)| t))
            .collect();
        let decided = logged(&meta_url);
        let undecided: Vec<String> = txids
            .iter()
            .filter(|t| !decided.iter().any(|(d, _)| d == *t))
            .cloned()
            .collect();
        if *point == "after-prepare" {
            assert!(
                !undecided.is_empty(),
                "{point}: no undecided part left: {txids:?}"
            );
        }
        left.push((*point, txids, undecided));
        let env = match KILL_POINTS.get(i + 1) {
            Some(next) => armed(next),
            None => FAST_RECOVERY.to_vec(),
        };
        doomed = Process::start(&db.0, &env).await;
        ports.doomed.store(doomed.port, Ordering::Relaxed);
    }
    let list: Vec<String> = moving.iter().map(i32::to_string).collect();
    let op = format!("startslots:0:2:{}", list.join(","));
    let dbname = db.0.clone();
    let mover = tokio::spawn(async move { mover_process(&dbname, &op, None).await });
    let moved_from = started.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stopped_at = started.elapsed();
    let outage = Outage::begin(&[Node::Primary(1)]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    outage.end().await;
    let moved = mover.await.unwrap();
    assert!(moved.success, "the mover failed: {}", moved.output);
    assert_done(&settings.cluster, move_id(&moved.output)).await;

    let mut all = Tally::default();
    for done in futures_util::future::join_all(clients).await {
        let t = done.expect("a client panicked");
        all.acknowledged.extend(t.acknowledged);
        all.refused += t.refused;
        all.resent += t.resent;
        all.replayed += t.replayed;
    }
    let took = started.elapsed();

    // Nothing stays prepared once the recovery has run.
    let deadline = Instant::now() + Duration::from_secs(30);
    while urls.iter().any(|u| !prepared(u).is_empty()) {
        assert!(
            Instant::now() < deadline,
            "parts still prepared 30 s after the run"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut expected = vec![OPENING; ACCOUNTS];
    for (from, to, amount) in &all.acknowledged {
        expected[*from] -= amount;
        expected[*to] += amount;
    }
    let map = control_plane::map::change::current(&settings.cluster)
        .await
        .unwrap();
    let mut found: HashMap<String, Vec<(usize, i64)>> = HashMap::new();
    for (shard, u) in urls.iter().enumerate() {
        for (id, bal) in accounts_on(u) {
            found.entry(id).or_default().push((shard, bal));
        }
    }
    let mut total = 0;
    for (i, want) in expected.iter().enumerate() {
        let owner = map.owners[route(i).slot().0 as usize].index();
        let stored = found.get(&account(i)).cloned().unwrap_or_default();
        assert_eq!(
            stored,
            vec![(owner, *want)],
            "{}: stored once, on its owner, with every acknowledged transfer applied once",
            account(i)
        );
        total += want;
    }
    assert_eq!(total, OPENING * ACCOUNTS as i64, "the total is unchanged");

    // Every transaction a kill left prepared was settled by the log: each has a
    // decision now; and the coordinator killed after PREPARE left one undecided, which
    // the recovery decided `abort` before rolling it back (no one could log `commit`).
    let decisions = logged(&meta_url);
    let decision = |t: &str| {
        decisions
            .iter()
            .find(|(d, _)| d == t)
            .map(|(_, d)| d.clone())
    };
    for (point, txids, undecided) in &left {
        for t in txids {
            assert!(
                decision(t).is_some(),
                "{point}: {t} settled without a decision"
            );
        }
        if *point == "after-prepare" {
            assert!(
                undecided
                    .iter()
                    .any(|t| decision(t).as_deref() == Some("abort")),
                "{point}: the dead coordinator's transaction was not decided abort: {undecided:?}"
            );
        }
    }
    let aborts = decisions.iter().filter(|(_, d)| d == "abort").count();
    assert!(
        all.acknowledged.len() > 50,
        "too few transfers to mean anything: {all:?}"
    );
    eprintln!(
        "storm: {} transfers acknowledged ({} answered as replays), {} refused, {} resends in {took:?}; \
         kills at {kills:?}, move from {moved_from:?}, shard 1 stopped at {stopped_at:?} for 3 s; \
         {} decisions logged ({} abort)",
        all.acknowledged.len(),
        all.replayed,
        all.refused,
        all.resent,
        decisions.len(),
        aborts,
    );
    drop(doomed);
    drop(stable);
}
