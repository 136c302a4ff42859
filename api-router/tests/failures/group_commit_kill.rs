//! Group commit when the primary is lost mid-group: 16 clients each count one record of
//! their own up with keyed single writes (a fresh `Idempotency-Key` per write, the same
//! key on every resend), all on shard 0, through one gateway that groups them
//! (`database.batch_writes`, the default). Shard 0's primary is lost mid-run (under the
//! HA manager its keeper and PostgreSQL are killed -9) and comes back. The gateway holds
//! each keyed write whose primary was lost, before or after it was sent, and sends it
//! again with its key once the primary takes writes: no write is answered as lost to
//! the primary (the client resends only what backpressure refused with nothing written,
//! `429` or `503 shard-saturated`, as the primary's pool refills). A
//! trigger on the shard counts every write that committed: afterwards each write was
//! applied exactly once (none twice, none lost), each record holds its last acknowledged
//! value at the version its last acknowledgement named, and the primary took writes in
//! groups of more than one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use serde_json::{json, Value};
use test_app::{spawn_app, TestApp};
use test_support::outage::{serial, Node, Outage};

use crate::support::{keys_on, metric_sum};
use crate::txn_support;

/// Every committed insert or update of a record, counted in the same transaction.
const COUNT_APPLIED: &str = "
    CREATE TABLE sgtest_applied (shard_key TEXT NOT NULL, n BIGINT NOT NULL);
    CREATE FUNCTION sgtest_count_applied() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO sgtest_applied VALUES (NEW.shard_key, (NEW.data->>'n')::bigint);
        RETURN NEW;
    END $$;
    CREATE TRIGGER sgtest_count_applied AFTER INSERT OR UPDATE ON records
        FOR EACH ROW EXECUTE FUNCTION sgtest_count_applied();";

#[derive(QueryableByName)]
struct Applied {
    #[diesel(sql_type = Text)]
    shard_key: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    times: i64,
}

const CLIENTS: usize = 16;

/// Whether an answer refused a write for backpressure, with nothing written.
fn backpressure(status: u16, answer: &Value) -> bool {
    status == 429 || answer["type"] == "urn:shardgate:problem:shard-saturated"
}

/// Sends one keyed write until it is acknowledged: its version, whether the answer was
/// a replay, and how many times it was resent after anything but backpressure.
async fn until_acked(app: &TestApp, key: &str, n: i64) -> (i64, bool, usize) {
    let mut lost = 0;
    let idempotency = format!("gk-{key}-{n}");
    let body = json!({"table": "users", "id": "r", "data": {"n": n}});
    for _ in 0..600 {
        let sent = app
            .post_json_request("/api/write", Some(key), &body)
            .header("idempotency-key", &idempotency)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        let res = match sent {
            Ok(res) => res,
            Err(e) => {
                eprintln!("{key} n={n}: resent after no answer: {e}");
                lost += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let status = res.status().as_u16();
        let replayed = res.headers().get("idempotency-replayed").is_some();
        let answer: Value = res.json().await.unwrap_or(Value::Null);
        match status {
            200 | 201 => {
                let version = answer["version"].as_i64().expect("a version");
                return (version, replayed, lost);
            }
            // The primary away (503 naming the shard, "may have committed"), a timeout:
            // resent with the key.
            429 | 503 | 504 => {
                eprintln!("{key} n={n}: resent after {status} {answer}");
                lost += usize::from(!backpressure(status, &answer));
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => panic!("{key} n={n}: {other} {answer}"),
        }
    }
    panic!("{key} n={n}: never acknowledged");
}

/// One client's writes, one after another, until `stop`: the versions acknowledged,
/// the replays and the resends.
async fn client(app: &TestApp, key: &str, stop: &AtomicBool) -> (Vec<i64>, usize, usize) {
    let (mut versions, mut replays, mut resends) = (Vec::new(), 0, 0);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let (version, replayed, resent) = until_acked(app, key, n).await;
        versions.push(version);
        replays += usize::from(replayed);
        resends += resent;
    }
    (versions, replays, resends)
}

/// The sum and count of the write groups' sizes in `/metrics`.
async fn write_groups(app: &TestApp) -> (f64, f64) {
    let write = "kind=\"write\"";
    let sum = metric_sum(&app.client, &app.address, "shardgate_batch_size_sum", write);
    let count = metric_sum(
        &app.client,
        &app.address,
        "shardgate_batch_size_count",
        write,
    );
    (sum.await, count.await)
}

#[tokio::test]
async fn keyed_writes_in_groups_survive_the_primary_killed_and_happen_once() {
    let _serial = serial().await;
    let app = spawn_app().await;
    assert!(
        app.settings.cluster.database.batch_writes,
        "group commit is on by default"
    );
    let keys = keys_on(&app.settings, 0, CLIENTS);
    let primary = txn_support::urls(&app.settings).0[0].clone();
    PgConnection::establish(&primary)
        .expect("shard 0's primary")
        .batch_execute(COUNT_APPLIED)
        .expect("the counting trigger");

    let stop = AtomicBool::new(false);
    let runs = keys.iter().map(|key| client(&app, key, &stop));
    let killing = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let outage = Outage::begin(&[Node::Primary(0)]).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        outage.end().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::Relaxed);
    };
    let (done, ()) = tokio::join!(futures_util::future::join_all(runs), killing);

    let replays: usize = done.iter().map(|(_, r, _)| r).sum();
    let resends: usize = done.iter().map(|(_, _, r)| r).sum();
    let acked: usize = done.iter().map(|(v, _, _)| v.len()).sum();
    eprintln!(
        "{acked} writes acknowledged, {resends} resent after a loss, {replays} replayed answers"
    );
    let held = metric_sum(
        &app.client,
        &app.address,
        "shardgate_requests_held_total",
        "released",
    )
    .await;
    eprintln!("{held} writes held for the primary, then sent again");
    assert!(held > 0.0, "the primary's loss met writes, which were held");
    assert_eq!(
        resends, 0,
        "every keyed write acknowledged at its first send"
    );
    let mut conn = PgConnection::establish(&primary).expect("shard 0's primary");
    let applied: Vec<Applied> = diesel::sql_query(
        "SELECT shard_key, n, count(*) AS times FROM sgtest_applied GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .load(&mut conn)
    .expect("the writes applied");
    for (key, (versions, _, _)) in keys.iter().zip(&done) {
        let times: Vec<(i64, i64)> = applied
            .iter()
            .filter(|a| &a.shard_key == key)
            .map(|a| (a.n, a.times))
            .collect();
        let written = versions.len() as i64;
        // Writes applied other than once: (n, times), 0 for a write never applied.
        let wrong: Vec<(i64, i64)> = (1..=written)
            .map(|n| (n, times.iter().find(|t| t.0 == n).map_or(0, |t| t.1)))
            .chain(times.iter().filter(|t| t.0 > written).copied())
            .filter(|(_, t)| *t != 1)
            .collect();
        assert_eq!(wrong, vec![], "{key}: every write applied exactly once");
        assert!(
            versions.windows(2).all(|w| w[0] < w[1]),
            "{key}: each acknowledged write a newer version: {versions:?}"
        );
        let res = app.read_strong(key, "users", "r").await;
        assert_eq!(res.status().as_u16(), 200, "{key}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            (
                body["record"]["data"]["n"].as_i64(),
                body["record"]["version"].as_i64()
            ),
            (Some(written), versions.last().copied()),
            "{key}: the last acknowledged value, at the version it was answered with"
        );
    }
    let (sum, count) = write_groups(&app).await;
    assert!(
        count > 0.0 && sum > count,
        "writes went in groups of more than one: {sum} writes in {count} groups"
    );
}
