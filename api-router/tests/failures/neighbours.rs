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
//! Before a group's size and bytes were bounded and a refused write sent only the writes
//! that never ran to the next group, the queue of refused writes made one group that was
//! sent again, whole, once per refusal, under one deadline: about half the well-behaved
//! writes were answered 504 "may have committed" after 6 s, and had been rolled back.

use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl};
use futures_util::future::join_all;
use serde_json::{json, Value};
use shard_manager::servers::connection_url;
use test_support::outage::{serial, DropDatabase};
use test_support::{prepare_database, test_settings};

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
