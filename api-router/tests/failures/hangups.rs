//! Clients that hang up (a TCP reset) at any moment leave nothing held on any server,
//! and no other client waits for them. The gateway is the real binary, its requests
//! sent on raw sockets so a test can reset one at a chosen moment.
//!
//! - `a_snapshot_reader_hanging_up_in_the_fences_queue_leaves_it_free`: the cluster
//!   fence is held shared from outside (as a decision being written holds it) while
//!   four snapshot reads queue for it; they hang up; the outside holder lets go. The
//!   fence is then free (no session holds it, none sits idle in a transaction on the
//!   metadata database), and a transaction on two shards commits at once. Before the
//!   take was safe to drop, the lock was granted to the abandoned session, which kept
//!   it idle in its transaction, and every transaction on several shards answered 503.
//! - `thousands_of_hang_ups_at_random_moments_leave_nothing_held`: 16 sockets send
//!   every kind of request that touches several servers or holds anything
//!   (transactions on two shards, atomic and plain bulk writes, snapshot lists and
//!   read-many, exports, keyed writes under group commit) and reset at a random moment
//!   from 0 to 30 ms (then pause up to 20 ms), 2,000 times, while the fence is held
//!   shared from outside 30 ms of every 60 (decisions being written) and two clients
//!   move money between accounts through transactions; the last snapshot readers hang
//!   up in the fence's queue. Afterwards: no fence held, nothing prepared past the
//!   recovery's bound, no gateway session left in a transaction or mid-statement on
//!   any server, every kind answered at once again, the bank's total whole, and the
//!   gateway's memory near where it started. On the gateway before these fixes it
//!   found, besides the fence, pooled connections left in an aborted transaction
//!   holding their rows' locks.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::sql_types::BigInt;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use control_plane::txn::log::DECISION_FENCE_LOCK;
use test_app::gateway_process::Process;
use test_app::{prepare_database, test_settings};
use test_support::outage::{serial, DropDatabase};

use crate::support::{blocking, keys_on, seed};
use crate::txn_support::{self, prepared, RollBackLeftovers};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Sessions holding the cluster fence exclusive (a snapshot reader's take).
fn fence_holders(meta: &str) -> i64 {
    let mut conn = PgConnection::establish(meta).expect("connect to the metadata database");
    diesel::sql_query(
        "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND mode = 'ExclusiveLock' AND classid::bigint = ($1::bigint >> 32) \
         AND objid::bigint = ($1::bigint & 4294967295) AND objsubid = 1 \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .bind::<BigInt, _>(DECISION_FENCE_LOCK)
    .get_result::<Count>(&mut conn)
    .expect("pg_locks")
    .n
}

/// The gateway's sessions on `url`'s database that are not idle: in a transaction
/// (idle or aborted) or running a statement, for longer than `older_ms`.
fn busy_sessions(url: &str, older_ms: i64) -> i64 {
    let mut conn = PgConnection::establish(url).expect("connect");
    diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
         AND pid <> pg_backend_pid() AND state IS NOT NULL AND state <> 'idle' \
         AND backend_type = 'client backend' \
         AND now() - state_change > make_interval(secs => $1::double precision / 1000)",
    )
    .bind::<BigInt, _>(older_ms)
    .get_result::<Count>(&mut conn)
    .expect("pg_stat_activity")
    .n
}

#[derive(QueryableByName)]
struct Busy {
    #[diesel(sql_type = diesel::sql_types::Text)]
    line: String,
}

/// What the busy sessions of `url`'s database are doing, for a failure's message.
fn busy_detail(url: &str) -> Vec<String> {
    let mut conn = PgConnection::establish(url).expect("connect");
    diesel::sql_query(
        "SELECT format('%s %s for %s (%s): %s', application_name, state, now() - state_change, \
         coalesce(wait_event_type || '/' || wait_event, 'no wait'), left(query, 200)) AS line \
         FROM pg_stat_activity WHERE datname = current_database() \
         AND pid <> pg_backend_pid() AND state IS NOT NULL AND state <> 'idle' \
         AND backend_type = 'client backend'",
    )
    .load::<Busy>(&mut conn)
    .expect("pg_stat_activity")
    .into_iter()
    .map(|b| b.line)
    .collect()
}

/// An HTTP/1.1 request's bytes.
fn request(method: &str, path: &str, headers: &[(&str, String)], body: Option<&Value>) -> Vec<u8> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut text = format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        text.push_str("content-type: application/json\r\n");
    }
    text.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    text.into_bytes()
}

/// Sends `bytes` on a new connection to `port` and leaves it open.
async fn send(port: u16, bytes: &[u8]) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    stream.write_all(bytes).await.ok()?;
    Some(stream)
}

/// Hangs up with a reset (SO_LINGER 0), as a client that crashed or timed out does.
fn reset(stream: TcpStream) {
    let socket = socket2::SockRef::from(&stream);
    let _ = socket.set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Records to hang up on: a key on each of the first three shards per name.
struct Keys {
    shard: Vec<Vec<String>>,
}

impl Keys {
    fn new(settings: &api_router::server::settings::Settings) -> Self {
        Self {
            shard: (0..3).map(|s| keys_on(settings, s, 40)).collect(),
        }
    }

    fn on(&self, shard: usize, i: usize) -> &str {
        let keys = &self.shard[shard];
        &keys[i % keys.len()]
    }
}

/// One request of kind `kind` (see the module doc), number `n`. A storm's snapshot
/// lists ask 5 records a page, so their cuts are kept for a next page; the lists after
/// it ask the whole table, one page, so none is kept (a gateway keeps 4 at most).
fn storm_request(kind: usize, n: usize, keys: &Keys) -> Vec<u8> {
    request_of(kind, n, keys, 5)
}

/// [`storm_request`] with a snapshot list's page size `limit`.
fn request_of(kind: usize, n: usize, keys: &Keys, limit: usize) -> Vec<u8> {
    let (a, b) = (keys.on(0, n), keys.on(1, n));
    let record =
        |key: &str| json!({"table": "users", "shard_key": key, "id": key, "data": {"n": n}});
    let idem = || ("idempotency-key", format!("hangup-{n}"));
    match kind {
        0 => request(
            "POST",
            "/api/transaction",
            &[],
            Some(&json!({"operations": [record(a), record(b)]})),
        ),
        1 | 2 => {
            let records: Vec<Value> = (0..20)
                .map(|i| {
                    let key = keys.on(i % 3, n + i);
                    json!({"shard_key": key, "id": format!("{key}-bulk-{i}"), "data": {"n": n}})
                })
                .collect();
            request(
                "POST",
                "/api/bulk-write",
                &[],
                Some(&json!({"table": "users", "records": records, "atomic": kind == 1})),
            )
        }
        3 => request(
            "GET",
            &format!("/api/read?table=users&limit={limit}&consistency=snapshot"),
            &[],
            None,
        ),
        4 => {
            let reads: Vec<Value> = (0..6)
                .map(|i| {
                    let key = keys.on(i % 3, n + i);
                    json!({"table": "users", "shard_key": key, "id": key})
                })
                .collect();
            request(
                "POST",
                "/api/read-many",
                &[],
                Some(&json!({"reads": reads, "consistency": "snapshot"})),
            )
        }
        5 => request("GET", "/api/export?table=users", &[], None),
        _ => request(
            "POST",
            "/api/write",
            &[("x-shard-key", a.to_owned()), idem()],
            Some(&json!({"table": "users", "id": a, "data": {"n": n}})),
        ),
    }
}

/// How many kinds `storm_request` sends.
const KINDS: usize = 7;

const ACCOUNTS: usize = 20;
const OPENING: i64 = 1_000;

fn account(i: usize) -> String {
    format!("hangup-acct-{i:02}")
}

/// Moves money between random accounts through transactions until `stop`; each
/// transfer resent with its key until it has a definite answer. Answers how many
/// committed.
async fn mover(port: u16, me: u64, stop: Arc<AtomicBool>, refused: Arc<AtomicU64>) -> u64 {
    let http = reqwest::Client::new();
    let mut rng = StdRng::seed_from_u64(0x4A46 + me);
    let mut done = 0;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let from = rng.random_range(0..ACCOUNTS);
        let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
        let read = async |i: usize| {
            let url = format!(
                "http://127.0.0.1:{port}/api/read?table=users&id={}&consistency=strong",
                account(i)
            );
            let res = http
                .get(url)
                .header("x-shard-key", account(i))
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            let res = res.ok()?;
            if res.status() != 200 {
                return None;
            }
            let body: Value = res.json().await.ok()?;
            Some((
                body["record"]["data"]["balance"].as_i64()?,
                body["record"]["version"].as_i64()?,
            ))
        };
        let (Some((fb, fv)), Some((tb, tv))) = (read(from).await, read(to).await) else {
            refused.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
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
        let key = format!("hangup-move-{me}-{n}");
        for attempt in 0.. {
            assert!(attempt < 400, "transfer {key}: no definite answer");
            let sent = http
                .post(format!("http://127.0.0.1:{port}/api/transaction"))
                .header("idempotency-key", &key)
                .timeout(Duration::from_secs(15))
                .json(&body)
                .send()
                .await;
            let Ok(res) = sent else { continue };
            match res.status().as_u16() {
                200 => {
                    done += 1;
                    break;
                }
                409 => break,
                503 | 504 | 429 => {
                    refused.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => panic!("transfer {key}: {other} {}", res.text().await.unwrap()),
            }
        }
    }
    done
}

/// The gateway's resident memory now (VmRSS), in kB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Status and body of one request, with how long it took.
async fn timed(http: &reqwest::Client, port: u16, bytes: &[u8]) -> (u16, String, Duration) {
    // The same bytes the storm sent, through a client that waits for the answer.
    let text = String::from_utf8_lossy(bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let first = lines.next().unwrap();
    let mut parts = first.split(' ');
    let (method, path) = (parts.next().unwrap(), parts.next().unwrap());
    let mut req = http.request(
        method.parse().unwrap(),
        format!("http://127.0.0.1:{port}{path}"),
    );
    for line in lines {
        let (name, value) = line.split_once(": ").unwrap();
        if !matches!(name, "host" | "content-length") {
            req = req.header(name, value);
        }
    }
    if !body.is_empty() {
        req = req.body(body.to_owned());
    }
    let began = Instant::now();
    let res = req
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("an answer");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    (status, text, began.elapsed())
}

/// A connection to the metadata database that holds the fence shared from outside, as
/// decision writes do, waiting for it at most 5 s (a reader never holds it that long).
fn shared_holder(meta: &str) -> PgConnection {
    let mut conn = PgConnection::establish(meta).expect("connect to the metadata database");
    diesel::sql_query("SET lock_timeout = '5s'")
        .execute(&mut conn)
        .expect("bound the lock's wait");
    conn
}

/// Four snapshot reads (`body`, a read-many) queued for the fence while it is held
/// shared from outside (as a decision being written holds it), reset while they wait;
/// then the outside holder lets go.
async fn hang_up_in_the_fences_queue(port: u16, meta: &str, body: &Value) {
    let holder_url = meta.to_owned();
    let mut holder = blocking(move || {
        let mut conn = shared_holder(&holder_url);
        diesel::sql_query("SELECT pg_advisory_lock_shared($1)::text AS n")
            .bind::<BigInt, _>(DECISION_FENCE_LOCK)
            .execute(&mut conn)
            .expect("hold the fence shared: a reader held it exclusive for 5 s");
        conn
    })
    .await;
    let bytes = request("POST", "/api/read-many", &[], Some(body));
    let mut queued = Vec::new();
    for _ in 0..4 {
        queued.push(send(port, &bytes).await.expect("send a snapshot read"));
    }
    // They wait for the fence (the first on the lock, the others behind it).
    tokio::time::sleep(Duration::from_millis(400)).await;
    for stream in queued {
        reset(stream);
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    blocking(move || {
        diesel::sql_query("SELECT pg_advisory_unlock_shared($1)::text AS n")
            .bind::<BigInt, _>(DECISION_FENCE_LOCK)
            .execute(&mut holder)
            .expect("let the fence go");
    })
    .await;
}

#[tokio::test]
async fn a_snapshot_reader_hanging_up_in_the_fences_queue_leaves_it_free() {
    let _serial = serial().await;
    let mut settings = test_settings();
    prepare_database(&mut settings).await;
    let db = DropDatabase(settings.cluster.database.dbname.clone());
    let (primaries, meta) = txn_support::urls(&settings);
    let _leftovers = RollBackLeftovers(primaries[..3].to_vec());
    let (a, b) = (
        keys_on(&settings, 0, 1).remove(0),
        keys_on(&settings, 1, 1).remove(0),
    );
    let gateway = Process::start(&db.0, &[]).await;
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", gateway.port);
    let ops = |n: i64| {
        json!({"operations": [
            {"table": "users", "shard_key": a, "id": a, "data": {"n": n}},
            {"table": "users", "shard_key": b, "id": b, "data": {"n": n}},
        ]})
    };
    let res = http
        .post(format!("{base}/api/transaction"))
        .json(&ops(0))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let read_many = json!({"reads": [
        {"table": "users", "shard_key": a, "id": a},
        {"table": "users", "shard_key": b, "id": b},
    ], "consistency": "snapshot"});
    let res = http
        .post(format!("{base}/api/read-many"))
        .json(&read_many)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    hang_up_in_the_fences_queue(gateway.port, &meta, &read_many).await;

    // Nobody is left holding it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let m = meta.clone();
    let held = blocking(move || (fence_holders(&m), busy_sessions(&m, 0))).await;
    assert_eq!(
        held,
        (0, 0),
        "(sessions holding the fence, sessions in a transaction) on the metadata database \
         after every reader hung up:\n{}",
        gateway.output()
    );
    // And a transaction on two shards commits at once.
    let began = Instant::now();
    let res = http
        .post(format!("{base}/api/transaction"))
        .json(&ops(1))
        .send()
        .await
        .unwrap();
    let status = res.status();
    assert_eq!(status, 200, "{}", res.text().await.unwrap());
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "the transaction took {:?}",
        began.elapsed()
    );
    let res = http
        .post(format!("{base}/api/read-many"))
        .json(&read_many)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

#[tokio::test]
async fn thousands_of_hang_ups_at_random_moments_leave_nothing_held() {
    let _serial = serial().await;
    let mut settings = test_settings();
    prepare_database(&mut settings).await;
    let db = DropDatabase(settings.cluster.database.dbname.clone());
    let (primaries, meta) = txn_support::urls(&settings);
    let shards = primaries[..3].to_vec();
    let _leftovers = RollBackLeftovers(shards.clone());
    let keys = Arc::new(Keys::new(&settings));
    // A short recovery bound, so "nothing prepared past the bound" is soon checked.
    let gateway = Process::start(&db.0, &[("SHARDGATE__SERVER__TXN_IN_DOUBT_MS", "3000")]).await;
    let port = gateway.port;
    let http = reqwest::Client::new();
    let opening: Vec<Value> = (0..ACCOUNTS)
        .map(|i| json!({"shard_key": account(i), "id": account(i), "data": {"balance": OPENING}}))
        .collect();
    let res = http
        .post(format!("http://127.0.0.1:{port}/api/bulk-write"))
        .json(&json!({"table": "users", "records": opening}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    // Every kind once, answered, before the storm: each works, and the gateway's
    // connections and caches are made.
    for kind in 0..KINDS {
        let (status, body, _) = timed(&http, port, &request_of(kind, 0, &keys, 1_000)).await;
        assert!((200..300).contains(&status), "kind {kind}: {status} {body}");
    }
    let rss_before = rss_kb(gateway.pid());

    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let movers: Vec<_> = (0..2)
        .map(|me| tokio::spawn(mover(port, me, stop.clone(), refused.clone())))
        .collect();
    const HANG_UPS: usize = 2_000;
    const SOCKETS: usize = 16;
    let base_seed = seed("hangups");
    let sockets: Vec<_> = (0..SOCKETS)
        .map(|s| {
            let keys = keys.clone();
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(base_seed + s as u64);
                for i in 0..HANG_UPS / SOCKETS {
                    let n = s * 10_000 + i + 1;
                    let kind = rng.random_range(0..KINDS);
                    let Some(stream) = send(port, &storm_request(kind, n, &keys)).await else {
                        continue;
                    };
                    let wait = rng.random_range(0..30_000u64);
                    tokio::time::sleep(Duration::from_micros(wait)).await;
                    reset(stream);
                    // Then a pause, so the others' requests get their turn.
                    let pause = rng.random_range(0..20_000u64);
                    tokio::time::sleep(Duration::from_micros(pause)).await;
                }
            })
        })
        .collect();
    // Decisions being written, as far as the fence can tell: held shared 30 ms of every
    // 60 from outside, so snapshot readers often hang up while they wait for it.
    let contending = Arc::new(AtomicBool::new(true));
    let contender = {
        let (meta, contending) = (meta.clone(), contending.clone());
        std::thread::spawn(move || {
            let mut conn = shared_holder(&meta);
            while contending.load(Ordering::Relaxed) {
                diesel::sql_query("SELECT pg_advisory_lock_shared($1)::text AS n")
                    .bind::<BigInt, _>(DECISION_FENCE_LOCK)
                    .execute(&mut conn)
                    .expect("hold the fence shared: a reader held it exclusive for 5 s");
                std::thread::sleep(Duration::from_millis(30));
                diesel::sql_query("SELECT pg_advisory_unlock_shared($1)::text AS n")
                    .bind::<BigInt, _>(DECISION_FENCE_LOCK)
                    .execute(&mut conn)
                    .expect("let it go");
                std::thread::sleep(Duration::from_millis(30));
            }
        })
    };
    let storm = Instant::now();
    for socket in sockets {
        socket.await.expect("a socket task panicked");
    }
    let storm = storm.elapsed();
    contending.store(false, Ordering::Relaxed);
    contender.join().expect("the contender");
    // The storm's last snapshot readers hang up in the fence's queue, once the gateway
    // has worked off what the storm left it (so they reach the fence before they go).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let last_reads: Vec<Value> = (0..3)
        .map(|s| json!({"table": "users", "shard_key": keys.on(s, 0), "id": keys.on(s, 0)}))
        .collect();
    let body = json!({"reads": last_reads, "consistency": "snapshot"});
    hang_up_in_the_fences_queue(port, &meta, &body).await;
    stop.store(true, Ordering::Relaxed);
    let mut moved = 0;
    for done in futures_util::future::join_all(movers).await {
        moved += done.expect("a mover panicked");
    }

    // Nothing prepared past the recovery's bound (3 s here).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let urls = shards.clone();
        let left: Vec<Vec<String>> =
            blocking(move || urls.iter().map(|u| prepared(u)).collect()).await;
        if left.iter().all(Vec::is_empty) {
            break;
        }
        assert!(Instant::now() < deadline, "parts still prepared: {left:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A snapshot list's kept cut lives 5 s: past that, no gateway session is in a
    // transaction or mid-statement anywhere, and nobody holds the fence.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (urls, m) = (shards.clone(), meta.clone());
    let (busy, fence, meta_busy, detail) = blocking(move || {
        let busy: Vec<i64> = urls.iter().map(|u| busy_sessions(u, 1_000)).collect();
        let detail: Vec<String> = urls.iter().flat_map(|u| busy_detail(u)).collect();
        (busy, fence_holders(&m), busy_sessions(&m, 1_000), detail)
    })
    .await;
    assert_eq!(
        busy,
        vec![0, 0, 0],
        "sessions busy on the shards after the storm: {detail:#?}"
    );
    assert_eq!(
        (fence, meta_busy),
        (0, 0),
        "the fence, and the metadata database's sessions"
    );

    // Every kind answers at once again, ten times over.
    let mut slowest = Duration::ZERO;
    for round in 0..10 {
        for kind in 0..KINDS {
            let n = 1_000_000 + round * KINDS + kind;
            let (status, body, took) = timed(&http, port, &request_of(kind, n, &keys, 1_000)).await;
            assert!(
                (200..300).contains(&status),
                "kind {kind} after the storm: {status} {body}"
            );
            slowest = slowest.max(took);
        }
    }
    assert!(
        slowest < Duration::from_secs(3),
        "the slowest request after the storm took {slowest:?}"
    );

    // The bank is whole, read straight from the primaries.
    let urls = shards.clone();
    let stored: i64 = blocking(move || {
        (0..ACCOUNTS)
            .map(|i| {
                urls.iter()
                    .filter_map(|u| txn_support::balance(u, &account(i)))
                    .sum::<i64>()
            })
            .sum()
    })
    .await;
    assert_eq!(stored, OPENING * ACCOUNTS as i64, "the stored total");

    let rss_after = rss_kb(gateway.pid());
    eprintln!(
        "hang-ups: {HANG_UPS} reset in {storm:?}, {moved} transfers committed meanwhile ({} answers to retry), \
         RSS {rss_before} kB before, {rss_after} kB after, slowest request after {slowest:?}",
        refused.load(Ordering::Relaxed)
    );
    assert!(moved > 0, "no transfer committed while the storm went on");
    assert!(
        rss_after < rss_before + 64 * 1024,
        "the gateway's memory grew from {rss_before} kB to {rss_after} kB"
    );
    drop(gateway);
}
