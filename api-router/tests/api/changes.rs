//! A table's change stream (`GET /api/changes`) through the real HTTP API: every
//! acknowledged write once, in version order per record, a delete as a delete; a cursor
//! resumes with exactly the rest, as JSON pages and as Server-Sent Events; a transaction
//! on several shards arrives in one page; a slot move adds no change and loses none; a
//! bad cursor is 400 and one past retention 410.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shard_manager::routing::ShardId;
use shard_manager::ShardKey;
use test_app::{assert_problem, move_slots, spawn_app, spawn_app_with, TestApp};

use crate::transaction::two_shards;

/// One page after `after` (a new stream's first when None): its changes and `next`.
async fn page(app: &TestApp, after: Option<&str>, limit: usize) -> (Vec<Value>, String) {
    let mut url = format!("/api/changes?table=users&limit={limit}");
    if let Some(after) = after {
        url.push_str(&format!("&after={after}"));
    }
    let res = app
        .client
        .get(app.url(&url))
        .send()
        .await
        .expect("GET /api/changes");
    assert_eq!(res.status().as_u16(), 200, "{url}");
    let body: Value = res.json().await.unwrap();
    let changes = body["changes"].as_array().expect("changes").clone();
    (changes, body["next"].as_str().expect("next").to_owned())
}

/// Every change after `after`, page by page until one is empty: (changes, the cursor
/// after them).
async fn drain(app: &TestApp, after: Option<&str>, limit: usize) -> (Vec<Value>, String) {
    let mut all = Vec::new();
    let (mut changes, mut next) = page(app, after, limit).await;
    while !changes.is_empty() {
        all.append(&mut changes);
        (changes, next) = page(app, Some(&next), limit).await;
    }
    (all, next)
}

/// Writes users/`id` under `key`: its version.
async fn write(app: &TestApp, key: &str, id: &str, n: i64) -> i64 {
    let res = app
        .write(key, &json!({"table": "users", "id": id, "data": {"n": n}}))
        .await;
    assert!(
        res.status().is_success(),
        "write {key}/{id}: {}",
        res.status()
    );
    let body: Value = res.json().await.unwrap();
    body["version"].as_i64().expect("version")
}

/// (id, version, operation) of each change, in stream order.
fn seen(changes: &[Value]) -> Vec<(String, i64, String)> {
    changes
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["version"].as_i64().unwrap(),
                c["operation"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_acknowledged_write_appears_once_in_version_order_and_a_cursor_resumes_exactly() {
    let app = spawn_app().await;
    let mut acknowledged: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for round in 0..3 {
        for i in 0..8 {
            let (key, id) = (format!("user_{i}"), format!("rec_{i}"));
            let version = write(&app, &key, &id, round).await;
            acknowledged.entry(id).or_default().push(version);
        }
    }
    let res = app.delete("user_3", "users", "rec_3").await;
    assert!(res.status().is_success(), "delete: {}", res.status());

    // Pages of 5: a cut's delta is longer than a page, so pages resume inside it.
    let (changes, _) = drain(&app, None, 5).await;
    let seen = seen(&changes);
    assert_eq!(
        seen.len(),
        8 * 3 + 1,
        "every write once, and the delete: {seen:?}"
    );
    let mut per_record: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for (id, version, op) in &seen {
        per_record
            .entry(id.clone())
            .or_default()
            .push((*version, op.clone()));
    }
    for (id, versions) in &acknowledged {
        let upserts: Vec<i64> = per_record[id]
            .iter()
            .filter(|(_, op)| op == "upsert")
            .map(|(v, _)| *v)
            .collect();
        assert_eq!(
            &upserts, versions,
            "{id}: the acknowledged versions, in order"
        );
    }
    let rec_3 = &per_record["rec_3"];
    let (last_version, last_op) = rec_3.last().unwrap();
    assert_eq!(last_op, "delete", "a delete appears as a delete: {rec_3:?}");
    assert!(
        *last_version > acknowledged["rec_3"][2],
        "after the last upsert"
    );
    let first = changes.iter().find(|c| c["id"] == "rec_0").unwrap();
    assert_eq!(first["table"], "users");
    assert_eq!(first["shard_key"], "user_0");
    assert_eq!(first["data"], json!({"n": 0}));
    assert!(first["time"].as_str().unwrap().starts_with("20"), "{first}");
    assert!(changes
        .iter()
        .filter(|c| c["operation"] == "delete")
        .all(|c| c.get("data").is_none()));

    // Resuming after any page's cursor gives exactly the rest.
    let (head, cursor) = page(&app, None, 7).await;
    let (rest, end) = drain(&app, Some(&cursor), 3).await;
    let mut again = self::seen(&head);
    again.extend(self::seen(&rest));
    assert_eq!(
        again, seen,
        "a page, then the rest from its cursor, is the whole stream"
    );

    // Nothing more after the end; a later write is the next change.
    let (none, end) = page(&app, Some(&end), 10).await;
    assert!(none.is_empty(), "{none:?}");
    let version = write(&app, "user_9", "rec_9", 9).await;
    let (later, _) = drain(&app, Some(&end), 10).await;
    assert_eq!(
        self::seen(&later),
        vec![("rec_9".to_owned(), version, "upsert".to_owned())]
    );
}

#[tokio::test]
async fn a_page_waits_for_a_change_and_events_resume_from_last_event_id() {
    let app = spawn_app().await;
    let (_, end) = drain(&app, None, 100).await;

    // A long poll answers when a write commits, well before its wait.
    let waiting = {
        let client = app.client.clone();
        let url = app.url(&format!("/api/changes?table=users&wait=5000&after={end}"));
        tokio::spawn(async move {
            let began = Instant::now();
            let body: Value = client.get(url).send().await.unwrap().json().await.unwrap();
            (body, began.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let version = write(&app, "user_1", "rec_1", 1).await;
    let (body, took) = waiting.await.unwrap();
    assert_eq!(body["changes"][0]["version"], version, "{body}");
    assert!(
        took < Duration::from_millis(4000),
        "answered after {took:?}"
    );

    for i in 2..6 {
        write(&app, &format!("user_{i}"), &format!("rec_{i}"), i).await;
    }
    // Server-Sent Events from the start: five changes, each with its cursor as id.
    let events = sse(&app, None, 5).await;
    let ids: Vec<&str> = events
        .iter()
        .map(|(_, c)| c["id"].as_str().unwrap())
        .collect();
    let ids: HashSet<&str> = ids.into_iter().collect();
    assert_eq!(
        ids,
        HashSet::from(["rec_1", "rec_2", "rec_3", "rec_4", "rec_5"])
    );
    assert!(events.iter().all(|(id, _)| id.starts_with("chg-")));
    // Reconnecting with the second event's id gives the third onwards, exactly.
    let resumed = sse(&app, Some(&events[1].0), 3).await;
    let expect: Vec<&Value> = events[2..].iter().map(|(_, c)| c).collect();
    let got: Vec<&Value> = resumed.iter().map(|(_, c)| c).collect();
    assert_eq!(got, expect);
}

#[tokio::test]
async fn from_now_skips_the_history_and_follows_what_comes() {
    let app = spawn_app().await;
    write(&app, "user_1", "rec_old", 1).await;
    let res = app
        .client
        .get(app.url("/api/changes?table=users&from=now"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["changes"], json!([]), "{body}");
    assert_eq!(body["resolved"], Value::Null, "skipped, not sent: {body}");
    let now = body["next"].as_str().expect("next").to_owned();
    let version = write(&app, "user_2", "rec_new", 2).await;
    let (changes, _) = drain(&app, Some(&now), 10).await;
    assert_eq!(
        seen(&changes),
        vec![("rec_new".to_owned(), version, "upsert".to_owned())]
    );
    // A cursor wins over `from`, as with `snapshot`.
    let res = app
        .client
        .get(app.url(&format!("/api/changes?table=users&from=now&after={now}")))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(seen(body["changes"].as_array().unwrap()).len(), 1, "{body}");
    let bad = app
        .client
        .get(app.url("/api/changes?table=users&from=later"))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(bad, 400).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("`now`"),
        "{problem}"
    );
}

#[tokio::test]
async fn waiting_readers_share_one_cut_per_tick_and_each_gets_the_next_change() {
    let app = spawn_app().await;
    let (_, end) = drain(&app, None, 100).await;
    let readers = 8;
    let cuts_before = app.cluster.change_streams().cuts();
    let began = Instant::now();
    let polls: Vec<_> = (0..readers)
        .map(|_| {
            let client = app.client.clone();
            let url = app.url(&format!("/api/changes?table=users&wait=2000&after={end}"));
            tokio::spawn(async move {
                let res = client.get(url).send().await.unwrap();
                assert_eq!(res.status().as_u16(), 200);
                res.json::<Value>().await.unwrap()
            })
        })
        .collect();
    let mut cursors = Vec::new();
    for poll in polls {
        let body = poll.await.unwrap();
        assert_eq!(body["changes"], json!([]), "an idle table: {body}");
        cursors.push(body["next"].as_str().expect("next").to_owned());
    }
    let waited = began.elapsed();
    let cuts = app.cluster.change_streams().cuts() - cuts_before;
    // Each reader's first look takes its own cut; then one cut per 200 ms tick for all
    // eight (each taking its own would be about 8 + 8 × 10).
    let ticks = (waited.as_millis() / 200) as u64 + 1;
    assert!(
        cuts <= readers + ticks + 2,
        "{cuts} cuts for {readers} readers waiting {waited:?} ({ticks} ticks)"
    );
    // Every reader's cursor still gives the next change, once.
    let version = write(&app, "user_1", "rec_1", 1).await;
    for cursor in &cursors {
        let (changes, _) = drain(&app, Some(cursor), 10).await;
        assert_eq!(
            seen(&changes),
            vec![("rec_1".to_owned(), version, "upsert".to_owned())]
        );
    }
}

/// A stream that follows a table while it is written takes its first cut at once, then at
/// most one per 200 ms tick (shared with the gateway's other readers), not one per page
/// as fast as pages go; and it still sends every change, once, in order.
#[tokio::test]
async fn a_stream_following_a_busy_table_takes_one_cut_per_tick() {
    let app = spawn_app().await;
    let writes = 120;
    let cuts_before = app.cluster.change_streams().cuts();
    let began = Instant::now();
    let writer = async {
        let mut versions = Vec::new();
        for n in 0..writes {
            versions.push(write(&app, &format!("user_{n}"), &format!("rec_{n}"), n).await);
        }
        versions
    };
    let (events, versions) = tokio::join!(sse(&app, None, writes as usize), writer);
    let took = began.elapsed();
    let cuts = app.cluster.change_streams().cuts() - cuts_before;
    let ticks = (took.as_millis() / 200) as u64 + 1;
    assert!(
        cuts <= ticks + 3,
        "{cuts} cuts in {took:?} ({ticks} ticks) for {writes} writes"
    );
    let got: Vec<(String, i64)> = events
        .iter()
        .map(|(_, c)| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["version"].as_i64().unwrap(),
            )
        })
        .collect();
    let wanted: Vec<(String, i64)> = (0..writes)
        .map(|n| format!("rec_{n}"))
        .zip(versions)
        .collect();
    let (mut got, mut wanted) = (got, wanted);
    got.sort();
    wanted.sort();
    assert_eq!(got, wanted, "every write's change, once");
}

/// The first `count` change events of a stream (after `last_event_id` when given):
/// (the event's id, its change).
async fn sse(app: &TestApp, last_event_id: Option<&str>, count: usize) -> Vec<(String, Value)> {
    let mut req = app
        .client
        .get(app.url("/api/changes?table=users"))
        .header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let mut res = req.send().await.expect("GET /api/changes as events");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while events.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} events: {text}",
            events.len()
        );
        let chunk = tokio::time::timeout(Duration::from_secs(10), res.chunk())
            .await
            .expect("an event in time")
            .expect("the stream")
            .expect("the stream went on");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name).map(str::to_owned))
            };
            if field("event: ").as_deref() == Some("change") {
                let data: Value = serde_json::from_str(&field("data: ").unwrap()).unwrap();
                events.push((field("id: ").unwrap(), data));
            }
        }
    }
    events.truncate(count);
    events
}

#[tokio::test]
async fn a_transaction_across_shards_arrives_in_one_page_with_its_id() {
    let app = crate::transaction::spawn().await;
    let (a, b) = two_shards(&app);
    let (_, mut cursor) = drain(&app, None, 1000).await;
    // Pages read while the transaction commits beside single writes.
    let reader = {
        let client = app.client.clone();
        let base = app.url("/api/changes?table=users&limit=1000&wait=300&after=");
        tokio::spawn(async move {
            let mut pages = Vec::new();
            let until = Instant::now() + Duration::from_secs(3);
            while Instant::now() < until {
                let body: Value = client
                    .get(format!("{base}{cursor}"))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                cursor = body["next"].as_str().unwrap().to_owned();
                pages.push(body["changes"].as_array().unwrap().clone());
            }
            pages
        })
    };
    let mut txids = Vec::new();
    for round in 0..5 {
        let ops = vec![
            crate::transaction::upsert(&a, round, None),
            crate::transaction::upsert(&b, -round, None),
        ];
        let res = app
            .post_json("/api/transaction", None, &json!({ "operations": ops }))
            .await;
        assert_eq!(res.status().as_u16(), 200);
        let body: Value = res.json().await.unwrap();
        txids.push(body["txid"].as_str().expect("txid").to_owned());
        write(&app, "user_1", "rec_1", round).await;
    }
    let pages = reader.await.unwrap();
    for txid in &txids {
        let holding: Vec<usize> = pages
            .iter()
            .enumerate()
            .filter(|(_, p)| p.iter().any(|c| c["transaction"] == txid.as_str()))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(
            holding.len(),
            1,
            "transaction {txid} in one page: {holding:?}"
        );
        let parts: HashSet<&str> = pages[holding[0]]
            .iter()
            .filter(|c| c["transaction"] == txid.as_str())
            .map(|c| c["shard_key"].as_str().unwrap())
            .collect();
        assert_eq!(
            parts,
            HashSet::from([a.as_str(), b.as_str()]),
            "{txid}: both parts"
        );
    }
}

#[tokio::test]
async fn a_slot_move_adds_no_change_and_loses_none() {
    let app = spawn_app().await;
    // Keys in the two slots shard 0 gives up first (its last two), and keys elsewhere.
    let router = app.router();
    let last = router
        .ranges_of(ShardId(0))
        .last()
        .expect("shard 0 owns slots")
        .1;
    let moving: Vec<String> = (0..50_000)
        .map(|i| format!("mv_{i}"))
        .filter(|k| {
            let routed = router.route(ShardKey::parse(k).unwrap()).unwrap();
            routed.shard() == ShardId(0) && routed.slot().0 + 1 >= last
        })
        .take(4)
        .collect();
    assert_eq!(moving.len(), 4, "keys in shard 0's last slots");
    let keys: Vec<String> = moving
        .iter()
        .cloned()
        .chain((0..4).map(|i| format!("user_{i}")))
        .collect();
    for (i, key) in keys.iter().enumerate() {
        write(&app, key, key, i as i64).await;
    }
    let (before, cursor) = drain(&app, None, 100).await;
    assert_eq!(before.len(), keys.len());

    let done = move_slots(&app.settings.cluster, 0, 1, 2).await;
    let moved: Vec<&String> = moving
        .iter()
        .filter(|k| {
            let slot = router.route(ShardKey::parse(k).unwrap()).unwrap().slot().0 as i32;
            done.detail.slots.contains(&slot)
        })
        .collect();
    assert!(
        !moved.is_empty(),
        "the move took a slot holding a key: {:?}",
        done.detail.slots
    );

    // The copy into the target and the cleanup of the source are no changes.
    let (during, cursor) = drain(&app, Some(&cursor), 100).await;
    assert!(during.is_empty(), "the move showed as changes: {during:?}");
    // Writes after the cutover follow, each once; from the start, nothing is lost.
    let mut after = BTreeMap::new();
    for (i, key) in keys.iter().enumerate() {
        after.insert(key.clone(), write(&app, key, key, 100 + i as i64).await);
    }
    let (later, _) = drain(&app, Some(&cursor), 100).await;
    let got: BTreeMap<String, i64> = later
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["version"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(later.len(), keys.len(), "{later:?}");
    assert_eq!(got, after);
    assert!(later.iter().all(|c| c["operation"] == "upsert"));
    let moved_key = moved[0].as_str();
    let on = later.iter().find(|c| c["id"] == moved_key).unwrap();
    assert_eq!(
        on["shard"], 1,
        "a moved key's change comes from its new shard"
    );
    let (whole, _) = drain(&app, None, 100).await;
    assert_eq!(
        whole.len(),
        2 * keys.len(),
        "the whole stream: each write once"
    );
}

#[tokio::test]
async fn a_bad_cursor_is_400_and_one_past_retention_is_410() {
    let app = spawn_app_with(|s| {
        s.cluster.changes.retention_secs = 1;
        s.server.idempotency_sweep_secs = 1;
    })
    .await;
    for bad in ["nope", "chg-zz", "snap-00"] {
        let res = app
            .client
            .get(app.url(&format!("/api/changes?table=users&after={bad}")))
            .send()
            .await
            .unwrap();
        let problem = assert_problem(res, 400).await;
        assert_eq!(
            problem["type"],
            "urn:shardgate:problem:invalid-change-cursor"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains("`after`"),
            "{problem}"
        );
    }
    let res = app
        .client
        .get(app.url("/api/changes?table=users"))
        .header("last-event-id", "chg-00")
        .send()
        .await
        .unwrap();
    let problem = assert_problem(res, 400).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("Last-Event-ID"),
        "{problem}"
    );
    let res = app
        .client
        .get(app.url("/api/changes?table=users&limit=0"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 400).await;

    write(&app, "user_1", "rec_1", 1).await;
    let (_, old) = drain(&app, None, 10).await;
    write(&app, "user_2", "rec_2", 2).await;
    let (_, fresh) = drain(&app, Some(&old), 10).await;
    // A cursor a little later: no transaction that the pruning may remove is in
    // progress in its snapshot.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, fresh) = page(&app, Some(&fresh), 10).await;
    // Past the retention and a sweep, the old cursor's position is gone.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let res = app
            .client
            .get(app.url(&format!("/api/changes?table=users&after={old}")))
            .send()
            .await
            .unwrap();
        if res.status().as_u16() == 410 {
            let problem = assert_problem(res, 410).await;
            assert_eq!(problem["type"], "urn:shardgate:problem:changes-gone");
            assert!(
                problem["detail"].as_str().unwrap().contains("retains"),
                "{problem}"
            );
            break;
        }
        assert_eq!(res.status().as_u16(), 200);
        assert!(
            Instant::now() < deadline,
            "the cursor was never refused as gone"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A cursor past every change pruned goes on.
    let (after, _) = page(&app, Some(&fresh), 10).await;
    assert!(after.is_empty(), "{after:?}");
    // A new stream starts at what is kept: the retention pruned both writes.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (kept, _) = drain(&app, None, 10).await;
        if kept.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "kept past the retention: {kept:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A JSON page at `url`: its body.
async fn page_at(app: &TestApp, url: &str) -> Value {
    let res = app.client.get(app.url(url)).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200, "{url}");
    res.json().await.unwrap()
}

#[tokio::test]
async fn from_a_snapshot_then_the_stream_equals_a_strong_read_at_the_end() {
    let app = std::sync::Arc::new(spawn_app().await);
    for i in 0..20 {
        write(&app, &format!("user_{i}"), &format!("rec_{i}"), 0).await;
    }
    let res = app.delete("user_4", "users", "rec_4").await;
    assert!(res.status().is_success(), "delete: {}", res.status());

    // Writers keep writing (new records, new versions, deletes) while the stream starts.
    let writer = {
        let app = app.clone();
        tokio::spawn(async move {
            for round in 1..4 {
                for i in 0..30 {
                    let (key, id) = (format!("user_{i}"), format!("rec_{i}"));
                    if i % 9 == 8 {
                        // A record deleted already, or never written: 404.
                        let res = app.delete(&key, "users", &id).await;
                        let status = res.status().as_u16();
                        assert!(
                            status == 200 || status == 204 || status == 404,
                            "delete: {status}"
                        );
                    } else {
                        write(&app, &key, &id, round).await;
                    }
                }
            }
        })
    };
    // The snapshot in pages of 7, then the changes after its cut, applied in order.
    let mut records: BTreeMap<String, i64> = BTreeMap::new();
    let mut snapshot_rows = 0;
    let mut url = "/api/changes?table=users&from=snapshot&limit=7".to_owned();
    let mut in_snapshot = true;
    loop {
        let body = page_at(&app, &url).await;
        let changes = body["changes"].as_array().unwrap();
        for c in changes {
            let (id, version) = (c["id"].as_str().unwrap(), c["version"].as_i64().unwrap());
            match c["operation"].as_str().unwrap() {
                "snapshot" => {
                    assert!(in_snapshot, "a snapshot row after a change: {c}");
                    assert!(
                        records.insert(id.to_owned(), version).is_none(),
                        "{id} twice in the snapshot"
                    );
                    snapshot_rows += 1;
                }
                "upsert" => {
                    in_snapshot = false;
                    if let Some(had) = records.insert(id.to_owned(), version) {
                        assert!(had < version, "{id}: {version} after {had}");
                    }
                }
                "delete" => {
                    in_snapshot = false;
                    records.remove(id);
                }
                other => panic!("operation {other}"),
            }
        }
        let next = body["next"].as_str().unwrap();
        url = format!("/api/changes?table=users&limit=7&after={next}");
        if changes.is_empty() && writer.is_finished() {
            assert!(
                body["resolved"].is_string(),
                "an empty page at a cut is resolved: {body}"
            );
            break;
        }
    }
    writer.await.unwrap();
    // One more page: the writer's last acknowledged writes are in it or were before.
    loop {
        let body = page_at(&app, &url).await;
        let changes = body["changes"].as_array().unwrap();
        for c in changes {
            let id = c["id"].as_str().unwrap().to_owned();
            match c["operation"].as_str().unwrap() {
                "delete" => drop(records.remove(&id)),
                _ => drop(records.insert(id, c["version"].as_i64().unwrap())),
            }
        }
        url = format!(
            "/api/changes?table=users&limit=7&after={}",
            body["next"].as_str().unwrap()
        );
        if changes.is_empty() {
            break;
        }
    }
    assert!(
        snapshot_rows >= 19,
        "the snapshot held {snapshot_rows} rows"
    );
    // A strong read of every record at the end.
    let mut strong: BTreeMap<String, i64> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = "/api/read?table=users&consistency=strong&limit=50".to_owned();
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let body = page_at(&app, &url).await;
        for r in body["records"].as_array().unwrap() {
            let r = r.get("record").unwrap_or(r);
            strong.insert(
                r["id"].as_str().unwrap().to_owned(),
                r["version"].as_i64().unwrap(),
            );
        }
        match body["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(records, strong, "snapshot + stream = the table now");
    assert!(!strong.contains_key("rec_8"), "deleted at the end");
}

#[tokio::test]
async fn a_cursor_resumes_over_from_snapshot_and_events_say_resolved() {
    let app = spawn_app_with(|s| s.cluster.changes.max_wait_ms = 300).await;
    write(&app, "user_1", "rec_1", 1).await;
    let (_, next) = page(&app, None, 10).await;
    // A cursor wins: the URL an EventSource reconnects with keeps `from=snapshot`.
    let version = write(&app, "user_3", "rec_3", 3).await;
    let body = page_at(
        &app,
        &format!("/api/changes?table=users&from=snapshot&after={next}"),
    )
    .await;
    assert_eq!(
        seen(body["changes"].as_array().unwrap()),
        vec![("rec_3".to_owned(), version, "upsert".to_owned())]
    );
    let res = app
        .client
        .get(app.url("/api/changes?table=users&from=yesterday"))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(res, 400).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("`from`"),
        "{problem}"
    );
    // A stream from a snapshot: the record as a snapshot row, then `resolved` with the
    // checkpoint as its id; resuming from it gives the next write only.
    let mut res = app
        .client
        .get(app.url("/api/changes?table=users&from=snapshot"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !text.contains("event: resolved") {
        assert!(Instant::now() < deadline, "no resolved event: {text}");
        let chunk = tokio::time::timeout(Duration::from_secs(10), res.chunk())
            .await
            .expect("an event in time")
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    drop(res);
    assert!(text.contains(r#""operation":"snapshot""#), "{text}");
    let resolved = text
        .split("\n\n")
        .find(|b| b.starts_with("event: resolved"))
        .unwrap();
    let checkpoint = resolved
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap();
    let data: Value = serde_json::from_str(
        resolved
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(data["table"], "users");
    assert!(data["resolved"].is_string(), "{data}");
    let version = write(&app, "user_2", "rec_2", 2).await;
    let (changes, _) = drain(&app, Some(checkpoint), 10).await;
    assert_eq!(
        seen(&changes),
        vec![("rec_2".to_owned(), version, "upsert".to_owned())]
    );
}

/// The sample of `name{table="users"}` in the gateway's `/metrics` (0 when absent).
async fn users_sample(app: &TestApp, name: &str) -> f64 {
    let text = crate::metrics_lint::metrics_text(app).await;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}{{table=\"users\"}} ")))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn metrics_count_changes_sent_and_streams_open_per_table() {
    // A stream notices its client gone at its next wait's end.
    let app = spawn_app_with(|s| s.cluster.changes.max_wait_ms = 500).await;
    for i in 0..5 {
        write(&app, &format!("user_{i}"), &format!("rec_{i}"), i).await;
    }
    let (changes, _) = drain(&app, None, 2).await;
    assert_eq!(changes.len(), 5);
    assert_eq!(
        users_sample(&app, "shardgate_changes_sent_total").await,
        5.0
    );
    let lag = users_sample(&app, "shardgate_change_lag_seconds").await;
    assert!((0.0..60.0).contains(&lag), "lag {lag}");
    assert_eq!(
        users_sample(&app, "shardgate_change_streams_open").await,
        0.0
    );
    // An open stream is counted while it lives.
    let res = app
        .client
        .get(app.url("/api/changes?table=users"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(
        users_sample(&app, "shardgate_change_streams_open").await,
        1.0
    );
    drop(res);
    let deadline = Instant::now() + Duration::from_secs(40);
    while users_sample(&app, "shardgate_change_streams_open").await != 0.0 {
        assert!(
            Instant::now() < deadline,
            "the stream closed is still counted open"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if let Some(lint) = crate::metrics_lint::promtool_lint(&app).await {
        assert_eq!(lint, "", "promtool check metrics");
    }
}
