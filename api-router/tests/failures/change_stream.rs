//! A change stream followed through slot moves, a primary killed -9 and its consumer's
//! gateway killed -9, through the real HTTP API.
//!
//! Two consumers (tables `users` and `orders`) follow Server-Sent Events on a gateway
//! process of their own while keyed writers write (new records, and records written
//! again and again) and a client runs keyed transactions across shards 1 and 2. The
//! writers' slots move three times (shard 0 to 1, 1 to 2, 2 to 0), shard 1's primary
//! node is killed -9 (pg_auto_failover promotes its standby; the node is started again
//! and switched back), and the consumers' gateway is killed -9: they resume on another
//! gateway with `Last-Event-ID`. They stop at a `resolved` event past the writers' end.
//! No stream ends in an error event: a shard failing over holds it.
//!
//! Then, after dropping events seen twice (same cursor): every acknowledged write was
//! seen exactly once; a record's versions rise; a transaction's two changes arrive with
//! no `resolved` between them and none without the other; and every change seen was
//! acknowledged (a write answered otherwise is looked up: it must have committed).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use control_plane::failover::switchover::switchover;
use control_plane::moves::plan::Which;
use control_plane::moves::{mover, Phase};
use serde_json::{json, Value};
use shard_manager::{ClusterSettings, ShardId, ShardKey};
use test_app::gateway_process::Process;
use test_app::{spawn_app_with, TestApp};
use test_support::outage::serial;
use test_support::setup_sh;
use test_support::wait::blocking;

use crate::support::keys_on;
use crate::under_load::{transactor, writer, Home, Seen};

/// One event of a stream, in the order it came.
#[derive(Debug, Clone)]
enum Event {
    Change(Value),
    Resolved,
}

/// What a consumer saw: its events, how many it dropped as seen twice, the error
/// events that ended a stream, and on which gateways it (re)connected.
#[derive(Default)]
struct Followed {
    events: Vec<Event>,
    twice: usize,
    errors: Vec<Value>,
    connects: Vec<usize>,
}

/// Follows `table` on `bases[0]`, then on `bases[1]` once `first_gone` says so,
/// resuming after the last event id seen, until a `resolved` later than `done`.
async fn follow(
    table: &str,
    bases: [&str; 2],
    first_gone: &AtomicBool,
    done: &Mutex<Option<DateTime<Utc>>>,
) -> Followed {
    let client = reqwest::Client::new();
    let mut seen = Followed::default();
    let mut ids: HashSet<String> = HashSet::new();
    let mut last: Option<String> = None;
    let deadline = Instant::now() + Duration::from_secs(400);
    'connect: loop {
        assert!(
            Instant::now() < deadline,
            "{table}: never resolved past the end"
        );
        let at = usize::from(first_gone.load(Ordering::Relaxed));
        let mut req = client
            .get(format!("{}/api/changes?table={table}", bases[at]))
            .header("accept", "text/event-stream");
        if let Some(id) = &last {
            req = req.header("last-event-id", id);
        }
        let Ok(mut res) = req.send().await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        if !res.status().is_success() {
            eprintln!("{table}: {} on gateway {at}", res.status());
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        seen.connects.push(at);
        let mut text = String::new();
        loop {
            let chunk = match tokio::time::timeout(Duration::from_secs(40), res.chunk()).await {
                Ok(Ok(Some(chunk))) => chunk,
                // Its gateway died, it ended with an error event, or it went quiet.
                _ => continue 'connect,
            };
            text.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some(end) = text.find("\n\n") {
                let block: String = text.drain(..end + 2).collect();
                let field = |name: &str| block.lines().find_map(|l| l.strip_prefix(name));
                let id = field("id: ").map(str::to_owned);
                let data = field("data: ").map(|d| serde_json::from_str::<Value>(d).unwrap());
                match (field("event: "), id, data) {
                    (Some("change"), Some(id), Some(change)) => {
                        last = Some(id.clone());
                        if !ids.insert(id) {
                            seen.twice += 1;
                            continue;
                        }
                        seen.events.push(Event::Change(change));
                    }
                    (Some("resolved"), Some(id), Some(data)) => {
                        last = Some(id);
                        let at = DateTime::parse_from_rfc3339(data["resolved"].as_str().unwrap())
                            .unwrap()
                            .with_timezone(&Utc);
                        seen.events.push(Event::Resolved);
                        if done.lock().unwrap().is_some_and(|end| at > end) {
                            return seen;
                        }
                    }
                    (Some("error"), _, Some(data)) => seen.errors.push(data),
                    _ => {}
                }
            }
        }
    }
}

/// Moves the slots `slots` (a list) from shard `from` to `to`.
async fn move_listed(settings: &ClusterSettings, slots: &str, from: u32, to: u32) {
    let request = mover::Request {
        kind: "move-slots".into(),
        from,
        to,
        which: Which::List(slots.to_owned()),
    };
    let mv = mover::start(settings, &request)
        .await
        .expect("start a move");
    let done = mover::run(settings, mv.id, &mut |_| {})
        .await
        .expect("run the move");
    assert_eq!(done.phase, Phase::Done, "{}", done.note);
    eprintln!("change stream: slots {slots} moved {from} -> {to}");
}

/// Writes `ids` under `key` again and again (each write its own `Idempotency-Key`),
/// until `stop`: each acknowledged version.
async fn rewriter(app: &TestApp, key: &str, ids: &[String], stop: &AtomicBool, seen: &Seen) {
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let id = &ids[i % ids.len()];
        let body = json!({"table": "users", "id": id, "data": {"n": i}});
        let started = Instant::now();
        let sent = app
            .post_json_request("/api/write", Some(key), &body)
            .header("idempotency-key", format!("rw-{key}-{i}"))
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        if let Some(answer) = seen.answer("rewrite", started, sent).await {
            seen.ack(key, "users", id, answer["version"].as_i64());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_followed_through_moves_a_kill_and_its_gateways_death_misses_nothing() {
    let _serial = serial().await;
    let app = spawn_app_with(|s| s.cluster.failover.write_wait_ms = 10_000).await;
    let settings = app.settings.cluster.clone();
    if settings.failover.ha_monitor.is_none() {
        panic!("the topology runs no HA manager (HA=0): nothing promotes a standby");
    }
    let router = settings.validate().expect("valid settings");
    let primary = settings.shards[1].primary.clone();
    let db = settings.database.dbname.clone();
    let home = Home;
    // Keys on shard 0 whose slots move round the shards; keys on shards 1 and 2 for
    // the transactions.
    let moving = keys_on(&app.settings, 0, 6);
    let slots: Vec<String> = moving
        .iter()
        .map(|k| {
            router
                .route(ShardKey::parse(k).unwrap())
                .unwrap()
                .slot()
                .0
                .to_string()
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let slots = slots.join(",");
    let pairs: Vec<(String, String)> = keys_on(&app.settings, 1, 4)
        .into_iter()
        .zip(keys_on(&app.settings, 2, 4))
        .collect();
    let rewritten: Vec<String> = (0..4).map(|i| format!("again{i}")).collect();

    // Quiet streams say `resolved` every second.
    let env = [("SHARDGATE__CHANGES__MAX_WAIT_MS", "1000")];
    let a = Process::start(&db, &env).await;
    let b = Process::start(&db, &env).await;
    let (a_url, b_url) = (
        format!("http://127.0.0.1:{}", a.port),
        format!("http://127.0.0.1:{}", b.port),
    );
    let a_gone = AtomicBool::new(false);
    let done: Mutex<Option<DateTime<Utc>>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    let seen = Seen::default();
    let steps = AtomicUsize::new(0);

    let operations = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        move_listed(&settings, &slots, 0, 1).await;
        steps.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(1)).await;
        eprintln!("change stream: the consumers' gateway killed -9");
        let killed = std::process::Command::new("kill")
            .args(["-9", &a.pid().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        a_gone.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(1)).await;
        move_listed(&settings, &slots, 1, 2).await;
        eprintln!("change stream: shard1-primary's node killed -9");
        blocking(|| setup_sh(&["pg", "stop", "shard1-primary"])).await;
        tokio::time::sleep(Duration::from_secs(12)).await;
        blocking(|| setup_sh(&["pg", "start", "shard1-primary"])).await;
        let say = |s: &str| eprintln!("change stream: {s}");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match switchover(&settings, ShardId(1), Some(&primary), "tester", say).await {
                Ok(_) => break,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("change stream: switch back not yet: {e}");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Err(e) => panic!("the switch back to {primary}: {e}"),
            }
        }
        move_listed(&settings, &slots, 2, 0).await;
        steps.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::Relaxed);
    };
    let load = async {
        let writers = (0..4).map(|n| writer(&app, &moving, n, &stop, &seen));
        tokio::join!(
            futures_util::future::join_all(writers),
            rewriter(&app, &moving[0], &rewritten, &stop, &seen),
            transactor(&app, &pairs, &stop, &seen),
            operations,
        );
        // Every write was answered: the streams end at a resolved past now.
        *done.lock().unwrap() = Some(Utc::now());
    };
    let bases = [a_url.as_str(), b_url.as_str()];
    let (users, orders, ()) = tokio::join!(
        follow("users", bases, &a_gone, &done),
        follow("orders", bases, &a_gone, &done),
        load,
    );
    drop(home);
    assert_eq!(steps.load(Ordering::Relaxed), 2, "every operation ran");
    let failures = seen.failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "keyed requests failed: {failures:#?}");

    for (table, followed) in [("users", &users), ("orders", &orders)] {
        eprintln!(
            "{table}: {} events, {} seen twice and dropped, connections on gateways {:?}",
            followed.events.len(),
            followed.twice,
            followed.connects
        );
        assert!(
            followed.connects.contains(&1),
            "{table}: resumed on the second gateway"
        );
        // A shard failing over holds a stream (it tries again): it never ends in error.
        assert!(
            followed.errors.is_empty(),
            "{table}: error events {:#?}",
            followed.errors
        );
    }
    // Per (table, key, id): the versions seen, in stream order.
    let mut versions: BTreeMap<(String, String, String), Vec<i64>> = BTreeMap::new();
    let mut transactions: HashMap<String, Vec<usize>> = HashMap::new();
    for (table, followed) in [("users", &users), ("orders", &orders)] {
        let mut resolved_before = 0;
        for event in &followed.events {
            match event {
                Event::Resolved => resolved_before += 1,
                Event::Change(change) => {
                    let record = (
                        table.to_owned(),
                        change["shard_key"].as_str().unwrap().to_owned(),
                        change["id"].as_str().unwrap().to_owned(),
                    );
                    versions
                        .entry(record)
                        .or_default()
                        .push(change["version"].as_i64().unwrap());
                    if let Some(txid) = change["transaction"].as_str() {
                        transactions
                            .entry(txid.to_owned())
                            .or_default()
                            .push(resolved_before);
                    }
                }
            }
        }
    }
    for (record, seen_versions) in &versions {
        assert!(
            seen_versions.windows(2).all(|w| w[0] < w[1]),
            "{record:?}: versions out of order or twice: {seen_versions:?}"
        );
    }
    for (txid, marks) in &transactions {
        assert_eq!(
            marks.len(),
            2,
            "transaction {txid}: {} of its 2 changes",
            marks.len()
        );
        assert_eq!(
            marks[0], marks[1],
            "transaction {txid}: a resolved came between its parts"
        );
    }
    let acked = seen.acked.lock().unwrap().clone();
    let mut acked_versions: HashMap<(String, String, String), Vec<Option<i64>>> = HashMap::new();
    for (key, table, id, version) in &acked {
        acked_versions
            .entry((table.to_string(), key.clone(), id.clone()))
            .or_default()
            .push(*version);
    }
    let mut lost = Vec::new();
    for (record, acked) in &acked_versions {
        let got = versions.get(record).cloned().unwrap_or_default();
        for version in acked {
            let found = match version {
                Some(v) => got.iter().filter(|g| *g == v).count(),
                None => got.len(),
            };
            if found != 1 {
                lost.push(format!(
                    "{record:?} version {version:?}: seen {found} times ({got:?})"
                ));
            }
        }
    }
    assert!(
        lost.is_empty(),
        "acknowledged writes not seen exactly once: {lost:#?}"
    );
    // A change no answer acknowledged: it must have committed (a strong read finds the
    // record at that version or later).
    let mut unacknowledged = 0;
    for ((table, key, id), got) in &versions {
        let known: HashSet<i64> = acked_versions
            .get(&(table.clone(), key.clone(), id.clone()))
            .map(|v| v.iter().flatten().copied().collect())
            .unwrap_or_default();
        let any_version = acked_versions
            .get(&(table.clone(), key.clone(), id.clone()))
            .is_some_and(|v| v.iter().any(Option::is_none));
        for version in got.iter().filter(|v| !known.contains(v) && !any_version) {
            unacknowledged += 1;
            let res = app.read_strong(key, table, id).await;
            assert_eq!(
                res.status().as_u16(),
                200,
                "{table}/{key}/{id} v{version}: not committed"
            );
            let body: Value = res.json().await.unwrap();
            assert!(
                body["version"].as_i64().unwrap() >= *version,
                "{table}/{key}/{id}: seen at {version}, stored {body}"
            );
        }
    }
    eprintln!(
        "change stream: {} acknowledged writes, {} records, {} transactions, {unacknowledged} changes not acknowledged (each committed)",
        acked.len(),
        versions.len(),
        transactions.len()
    );
    drop(b);
}
