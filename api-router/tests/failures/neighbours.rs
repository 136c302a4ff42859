//! One client never fails another: well-behaved clients beside one abusive shard key,
//! through the real HTTP API of one grouping gateway, on one primary.
//!
//! The abusive key sends, all at once, 300 writes of 300 kB that the shard refuses for
//! their own data (a check the test adds to the shard's table, as any value the shard
//! cannot store would be: a number out of range, a value too large for an index). 0.3 s
//! later, well-behaved clients write small records under the same key and under other
//! keys of the same shard, and read existing records. Every well-behaved write must be
//! acknowledged (2xx) and then found by a strong read; every read must answer 200; the
//! abusive writes must each be a 4xx naming the refusal; and the well-behaved writes'
//! p99 must stay within [`P99_BOUND`].
//!
//! Before a group's size and bytes were bounded, the queue of refused writes made one
//! group that was sent again, whole, once per refusal, under one deadline: the
//! well-behaved writes were answered 504 "may have committed" after 7 s, and had been
//! rolled back.
//!
//! The second test tells the callers apart by API key: the abusive key asks for nine
//! indexes on one table (the ninth refused), writes 100 kB values into every indexed
//! field, runs 10,000-record queries over records of 50 kB, sends forged snapshot
//! cursors and a burst of reads; meanwhile three clients of a well-behaved key each send
//! keyed writes, point reads, bulk writes, transactions across shards, lists, queries
//! and snapshot reads, one at a time. Every well-behaved request must be answered 2xx
//! within [`P99_BOUND`] at the p99. It holds with the per-key cap on a shard's queries
//! (`limits.concurrency_per_shard`) set: without it the abusive queries took the
//! shard's pool and a well-behaved transaction was answered 503 "shard saturated".

use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl};
use futures_util::future::join_all;
use serde_json::{json, Value};
use shard_manager::servers::connection_url;
use test_app::{prepare_database, test_settings};
use test_support::outage::{serial, DropDatabase};

use api_router::server::settings::Settings;
use control_plane::keys::{store, KeyLimits, KeyName, NewKey, Scopes};
use control_plane::map::meta;

use crate::support::{keys_on, Gateway};

/// Writes the shard refuses, all sent at once under one key.
const ABUSIVE: usize = 300;
/// Each abusive write's padding: large enough that sending it again is not free.
const PADDING: usize = 300 * 1024;
/// Well-behaved writes, half under the abusive key, half under other keys of its shard.
const GOOD: usize = 40;
/// Well-behaved point reads of records written before the abuse.
const READS: usize = 40;
/// The bound on the well-behaved writes' p99, well inside a write's deadline (the
/// statement timeout and a second): waiting behind the refused writes' groups costs
/// each of them at most a few rounds of a bounded group.
const P99_BOUND: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abusive_key_fails_no_well_behaved_request_and_holds_their_p99() {
    let _serial = serial().await;
    let mut settings = test_settings();
    settings.cluster.database.batch_writes = true;
    prepare_database(&mut settings).await;
    let _db = DropDatabase(settings.cluster.database.dbname.clone());
    // A refusal of the shard's own, for the record's data alone (SQLSTATE 23514).
    let primary = connection_url(
        &settings.cluster.database,
        &settings.cluster.shards[0].primary,
    );
    tokio::task::spawn_blocking(move || {
        let mut conn = PgConnection::establish(&primary).expect("connect to the primary");
        diesel::sql_query(
            "ALTER TABLE records ADD CONSTRAINT neighbours_refuse CHECK (NOT data ? 'refuse')",
        )
        .execute(&mut conn)
        .expect("add the check");
    })
    .await
    .unwrap();
    let keys = keys_on(&settings, 0, GOOD / 2 + 1);
    let abusive_key = keys[0].clone();
    let gateway = Gateway::start(settings).await;
    for i in 0..READS {
        let res = gateway.write(&keys[i % keys.len()], &format!("r{i}")).await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    }

    let padding: String = (0..PADDING)
        .map(|i| char::from(b'a' + ((i * 7919 + i / 13) % 26) as u8))
        .collect();
    // Encoded beforehand: the clients' own work is not what is measured.
    let bodies: Vec<Vec<u8>> = (0..ABUSIVE)
        .map(|i| {
            serde_json::to_vec(&json!({"table": "orders", "id": format!("bad{i}"),
                                       "data": {"refuse": true, "note": padding}}))
            .unwrap()
        })
        .collect();
    let abuse = bodies
        .into_iter()
        .map(|body| timed_write(&gateway, &abusive_key, body));
    let good = (0..GOOD).map(|i| {
        let gateway = &gateway;
        // Half under the abusive key, half under the shard's other keys.
        let key = if i % 2 == 0 {
            abusive_key.clone()
        } else {
            keys[1 + i / 2 % (keys.len() - 1)].clone()
        };
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let id = format!("good{i}");
            let body = json!({"table": "users", "id": id, "data": {"n": i}});
            let (status, text, took) =
                timed_write(gateway, &key, serde_json::to_vec(&body).unwrap()).await;
            (key, id, status, text, took)
        }
    });
    let reads = (0..READS).map(|i| {
        let gateway = &gateway;
        let key = keys[i % keys.len()].clone();
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let res = gateway.read(&key, &format!("r{i}")).await;
            let status = res.status().as_u16();
            (i, status, res.text().await.unwrap())
        }
    });
    let (abused, good, read) = tokio::join!(join_all(abuse), join_all(good), join_all(reads));

    for (key, id, status, body, took) in &good {
        assert!(
            (200..300).contains(status),
            "{id} under {key}, a well-behaved write, after {took:?}: {status} {body}"
        );
    }
    for (status, body, _) in &abused {
        assert!(
            (400..500).contains(status),
            "a refused record is the client's to fix: {status} {body}"
        );
    }
    let problem: Value = serde_json::from_str(&abused[0].1).unwrap();
    assert_eq!(problem["type"], "urn:shardgate:problem:data-refused");
    for (i, status, body) in &read {
        assert_eq!(*status, 200, "read r{i}: {body}");
    }
    // Every acknowledged write is there, once.
    for (key, id, ..) in &good {
        let res = gateway
            .get(
                key,
                &format!("/api/read?table=users&id={id}&consistency=strong"),
            )
            .await;
        assert_eq!(res.status(), 200, "{id} acknowledged, then not found");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["record"]["data"]["n"], id[4..].parse::<i64>().unwrap());
    }
    let mut took: Vec<Duration> = good.iter().map(|g| g.4).collect();
    took.sort();
    let p99 = took[(took.len() * 99).div_ceil(100) - 1];
    let abuse_took = abused.iter().map(|a| a.2).max().unwrap();
    eprintln!("neighbours: the last refused write was answered after {abuse_took:?}");
    eprintln!(
        "neighbours: {GOOD} well-behaved writes beside {ABUSIVE} refused ones of {PADDING} bytes: \
         p50 {:?}, p99 {p99:?}, max {:?}",
        took[took.len() / 2],
        took[took.len() - 1]
    );
    assert!(
        p99 <= P99_BOUND,
        "the well-behaved writes' p99 was {p99:?}, over {P99_BOUND:?}"
    );
}

/// One `POST /api/write` of the encoded `body` under `key`: its status, its body, and
/// how long its answer took.
async fn timed_write(gateway: &Gateway, key: &str, body: Vec<u8>) -> (u16, String, Duration) {
    let began = Instant::now();
    let res = gateway
        .client
        .post(format!("{}/api/write", gateway.address))
        .header("x-shard-key", key)
        .header("content-type", "application/json")
        .timeout(Duration::from_secs(60))
        .body(body)
        .send()
        .await
        .expect("an answer");
    let status = res.status().as_u16();
    (status, res.text().await.unwrap(), began.elapsed())
}

/// The well-behaved key's clients, each sending one request at a time.
const STREAMS: usize = 3;
/// Records of 50 kB the abusive key's queries read, all of them at once.
const LARGE: usize = 120;

/// One request of a well-behaved client: what it was, its status and body, and how
/// long its answer took.
type Answer = (String, u16, String, Duration);

/// Sends `req` and times its answer, named `what`.
async fn timed(what: String, req: reqwest::RequestBuilder) -> Answer {
    let began = Instant::now();
    let res = req
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("an answer");
    let status = res.status().as_u16();
    (what, status, res.text().await.unwrap(), began.elapsed())
}

/// Stores an API key as `shard-admin keys create` does, with the gateways' limits; its
/// secret.
async fn api_key(settings: &Settings, name: &str, scopes: &str) -> String {
    let key = NewKey {
        name: KeyName::parse(name).unwrap(),
        scopes: Scopes::parse(scopes).unwrap(),
        tables: None,
        limits: KeyLimits::default(),
    };
    let mut meta = meta::connect(&settings.cluster).await.unwrap();
    let secret = store::create(&mut meta.client, &key, "test").await.unwrap();
    secret.expose().to_owned()
}

/// Two API keys, as two callers are told apart: the abusive one (every scope) and a
/// well-behaved one. The gateway caps the queries each key runs on a shard at once
/// (`limits.concurrency_per_shard`, as an operator sets it), which is what keeps one
/// key's reads from taking a shard's whole pool: without the cap, the abusive queries
/// below left a well-behaved transaction 503 "shard saturated".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abusive_key_indexing_and_querying_fails_no_well_behaved_request() {
    let _serial = serial().await;
    let mut settings = test_settings();
    settings.cluster.database.batch_writes = true;
    // A pool as a production gateway has, and a cap that leaves most of it to others.
    settings.cluster.database.pool_max_size = 16;
    settings.limits.concurrency_per_shard = STREAMS as u32;
    prepare_database(&mut settings).await;
    let _db = DropDatabase(settings.cluster.database.dbname.clone());
    let keys = keys_on(&settings, 0, 8);
    let abuser = api_key(&settings, "abuser", "read,write,admin").await;
    let neighbour = api_key(&settings, "neighbour", "read,write").await;
    let gateway = Gateway::start(settings).await;
    let url = |path: &str| format!("{}{path}", gateway.address);
    // Each caller's own client: every request carries its key.
    let with_key = |secret: &str| {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {secret}").parse().unwrap(),
        );
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    };
    let (abusive, client) = (&with_key(&abuser), &with_key(&neighbour));
    crate::support::until(
        Duration::from_secs(10),
        "the gateway knows the keys",
        || async {
            let res = client.get(url("/api/indexes")).send().await.ok()?;
            // 403 (the neighbour has no admin scope) once its key is known; 401 before.
            (res.status() == 403).then_some(())
        },
    )
    .await;
    // What the well-behaved clients read, and what the abusive key's queries read.
    for i in 0..READS {
        let res = client
            .post(url("/api/write"))
            .header("x-shard-key", &keys[i % keys.len()])
            .json(&json!({"table": "users", "id": format!("r{i}"), "data": {"i": i}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    }
    let pad = "p".repeat(50 * 1024);
    for chunk in (0..LARGE).collect::<Vec<_>>().chunks(15) {
        let records: Vec<Value> = chunk
            .iter()
            .map(|i| {
                json!({"shard_key": format!("big{i}"), "id": format!("big{i}"),
                            "data": {"pad": pad, "n": i}})
            })
            .collect();
        let res = client
            .post(url("/api/bulk-write"))
            .json(&json!({"table": "events", "records": records}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }

    // The abusive key: nine indexes on one table (the ninth refused), records with
    // long values in every indexed field, queries of 10,000 records over the large
    // ones, forged snapshot cursors, and a burst of reads of what does not exist.
    let abusive_key = keys[0].clone();
    let abuse = async {
        let mut statuses = Vec::new();
        for f in 0..9 {
            let res = abusive
                .post(url("/api/indexes"))
                .json(&json!({"table": "users", "fields": [format!("f{f}")]}))
                .send()
                .await
                .unwrap();
            statuses.push(("index".to_owned(), res.status().as_u16()));
        }
        // Eight indexed fields of 100 kB each: a body just under the 1 MiB bound.
        let long = "l".repeat(100 * 1024);
        let mut calls = Vec::new();
        for i in 0..30 {
            let mut data = serde_json::Map::new();
            for f in 0..8 {
                data.insert(format!("f{f}"), json!(format!("{i}{long}")));
            }
            calls.push(timed(
                "long values".into(),
                abusive
                    .post(url("/api/write"))
                    .header("x-shard-key", &abusive_key)
                    .json(&json!({"table": "users", "id": format!("long{i}"), "data": data})),
            ));
        }
        // One kind at a time, each all at once: every kind meets the well-behaved load.
        let mut answered = join_all(std::mem::take(&mut calls)).await;
        for _ in 0..20 {
            calls.push(timed(
                "10,000 large records".into(),
                abusive
                    .post(url("/api/query"))
                    .json(&json!({"table": "events", "sort": [{"field": "pad"}], "limit": 10000})),
            ));
        }
        answered.extend(join_all(std::mem::take(&mut calls)).await);
        let export = "00000003-0000001B-1";
        let forged = json!({"after": "5b5d", "cut": "c", "until_ms": i64::MAX,
                            "exports": vec![json!([0, export]); 200]});
        let forged: String = serde_json::to_string(&forged)
            .unwrap()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        for _ in 0..5 {
            calls.push(timed(
                "a forged snapshot cursor".into(),
                abusive.get(url(&format!(
                    "/api/read?table=events&consistency=snapshot&cursor=snap-{forged}"
                ))),
            ));
        }
        answered.extend(join_all(std::mem::take(&mut calls)).await);
        for i in 0..200 {
            calls.push(timed(
                "a burst of reads".into(),
                abusive
                    .get(url(&format!("/api/read?table=users&id=nothing{i}")))
                    .header("x-shard-key", &abusive_key),
            ));
        }
        answered.extend(join_all(calls).await);
        for (what, status, _, _) in answered {
            statuses.push((what, status));
        }
        statuses
    };

    // The well-behaved clients, meanwhile: keyed writes, a bulk write, a transaction
    // across shards, point reads, lists, a query, a snapshot read.
    let good = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut calls = Vec::new();
        for round in 0..4 {
            for (i, key) in keys.iter().enumerate().skip(1) {
                calls.push(timed(
                    format!("write w{round}-{i}"),
                    client
                        .post(url("/api/write"))
                        .header("x-shard-key", key)
                        .json(&json!({"table": "users", "id": format!("w{round}-{i}"),
                                      "data": {"f0": "short", "round": round}})),
                ));
                calls.push(timed(
                    format!("read r{i}"),
                    client
                        .get(url(&format!("/api/read?table=users&id=r{i}")))
                        .header("x-shard-key", key),
                ));
            }
            calls.push(timed(
                format!("bulk {round}"),
                client
                    .post(url("/api/bulk-write"))
                    .json(&json!({"table": "orders",
                    "records": (0..10).map(|j| json!({"shard_key": format!("b{round}-{j}"),
                        "id": "1", "data": {"j": j}})).collect::<Vec<_>>()})),
            ));
            calls.push(timed(
                format!("transaction {round}"),
                client.post(url("/api/transaction")).json(&json!({"operations": [
                    {"table": "orders", "shard_key": format!("t{round}a"), "id": "1", "data": {"a": 1}},
                    {"table": "orders", "shard_key": format!("t{round}b"), "id": "1", "data": {"b": 1}}]})),
            ));
            calls.push(timed(
                format!("list {round}"),
                client
                    .get(url("/api/read?table=users&limit=20"))
                    .header("x-shard-key", &keys[1]),
            ));
            calls.push(timed(
                format!("query {round}"),
                client
                    .post(url("/api/query"))
                    .json(&json!({"table": "users",
                    "filter": [{"field": "f0", "op": "eq", "value": "short"}], "limit": 10})),
            ));
            calls.push(timed(
                format!("snapshot {round}"),
                client.get(url(
                    "/api/read?table=orders&consistency=snapshot&limit=1000",
                )),
            ));
        }
        // Three clients, each sending its next request once the last is answered.
        let mut streams: Vec<Vec<_>> = (0..STREAMS).map(|_| Vec::new()).collect();
        for (i, call) in calls.into_iter().enumerate() {
            streams[i % STREAMS].push(call);
        }
        let answers = join_all(streams.into_iter().map(|stream| async move {
            let mut answers = Vec::new();
            for call in stream {
                answers.push(call.await);
            }
            answers
        }))
        .await;
        answers.into_iter().flatten().collect::<Vec<_>>()
    };
    let (abused, good) = tokio::join!(abuse, good);

    for (what, status, body, took) in &good {
        assert!(
            (200..300).contains(status),
            "{what}, a well-behaved request, after {took:?}: {status} {body}"
        );
    }
    let indexes: Vec<u16> = abused
        .iter()
        .filter(|(what, _)| what == "index")
        .map(|(_, s)| *s)
        .collect();
    assert_eq!(
        indexes,
        [vec![202; 8], vec![422]].concat(),
        "eight, then refused"
    );
    for (what, status) in &abused {
        // Its requests wait for its own cap, and may be refused for it (429).
        let expected = match what.as_str() {
            "long values" => [201, 429].contains(status),
            "10,000 large records" => [200, 429].contains(status),
            "a forged snapshot cursor" => [400, 429].contains(status),
            "a burst of reads" => [404, 429].contains(status),
            _ => true,
        };
        assert!(expected, "the abusive key's {what}: {status}");
    }
    // Every kind of abuse was answered as itself at least once, not only refused.
    for (what, answer) in [
        ("long values", 201),
        ("10,000 large records", 200),
        ("a forged snapshot cursor", 400),
        ("a burst of reads", 404),
    ] {
        assert!(
            abused.iter().any(|(w, s)| w == what && *s == answer),
            "the abusive key's {what} never got {answer}: {:?}",
            abused
                .iter()
                .filter(|(w, _)| w == what)
                .map(|(_, s)| s)
                .collect::<Vec<_>>()
        );
    }
    let mut took: Vec<Duration> = good.iter().map(|g| g.3).collect();
    took.sort();
    let p99 = took[(took.len() * 99).div_ceil(100) - 1];
    eprintln!(
        "neighbours: {} well-behaved requests beside indexes, long values, 10,000-record \
         queries, forged cursors and a burst: p50 {:?}, p99 {p99:?}",
        took.len(),
        took[took.len() / 2]
    );
    assert!(
        p99 <= P99_BOUND,
        "the well-behaved requests' p99 was {p99:?}, over {P99_BOUND:?}"
    );
}
