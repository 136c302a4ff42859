//! `GET /api/export`: a whole table from every shard, as NDJSON or CSV, each record
//! once, paged (small pages here, so every shard takes many), with its key filter, its
//! problems, and under concurrent writes.

use std::time::Duration;

use diesel::RunQueryDsl;
use serde_json::{json, Value};

use shard_manager::export::{Export, ExportError, ExportSpec};
use shard_manager::ShardId;
use test_app::{assert_problem, spawn_app_with, TestApp};

use crate::export_format::{by_identity, csv, ndjson};

/// Pages of about 4 KiB per shard: a few dozen records each.
async fn small_pages() -> TestApp {
    spawn_app_with(|s| s.server.max_read_bytes = 12_288).await
}

/// Writes `records` (shard key, id, data) into `table`, in batches.
async fn write_all(app: &TestApp, table: &str, records: &[(String, String, Value)]) {
    for batch in records.chunks(2000) {
        let body: Vec<Value> = batch
            .iter()
            .map(|(k, id, data)| json!({"shard_key": k, "id": id, "data": data}))
            .collect();
        let res = app
            .bulk(None, &json!({"table": table, "records": body}))
            .await;
        assert_eq!(res.status().as_u16(), 200, "{:?}", res.text().await);
    }
}

fn users(n: usize, prefix: &str) -> Vec<(String, String, Value)> {
    (0..n)
        .map(|i| {
            (
                format!("{prefix}{}", i % 97),
                format!("r{i}"),
                json!({"i": i, "name": format!("user {i}")}),
            )
        })
        .collect()
}

async fn export(app: &TestApp, query: &str, accept: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(app.url(&format!("/api/export?{query}")));
    if let Some(accept) = accept {
        req = req.header("accept", accept);
    }
    req.send().await.expect("export")
}

#[tokio::test]
async fn export_holds_every_record_of_the_table_once_as_ndjson_and_as_csv() {
    let app = small_pages().await;
    let written = users(1500, "user_");
    write_all(&app, "users", &written).await;
    write_all(&app, "orders", &users(50, "order_")).await;
    let expected = by_identity(written);

    let res = export(&app, "table=users", None).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/x-ndjson"
    );
    let (records, last) = ndjson(&res.text().await.unwrap());
    assert_eq!(last["end"]["records"], json!(1500), "{last}");
    assert_eq!(by_identity(records), expected);

    let res = export(&app, "table=users", Some("text/csv")).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "text/csv; charset=utf-8"
    );
    assert_eq!(by_identity(csv(&res.text().await.unwrap())), expected);
}

#[tokio::test]
async fn csv_quotes_commas_quotes_and_line_breaks_and_reads_back_the_same() {
    let app = small_pages().await;
    let awkward = [
        "a,b",
        "say \"hi\"",
        "two\nlines",
        "cr\r\nlf",
        "plain",
        "\"",
        ",,",
    ];
    let written: Vec<(String, String, Value)> = awkward
        .iter()
        .enumerate()
        .map(|(i, text)| {
            (
                format!("key {text}"),
                format!("{text}-{i}"),
                json!({"text": text, "nested": {"list": [text, 1.5e300]}}),
            )
        })
        .collect();
    write_all(&app, "users", &written).await;

    let res = export(
        &app,
        "table=users",
        Some("text/csv, application/json;q=0.5"),
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    let got = by_identity(csv(&res.text().await.unwrap()));
    assert_eq!(got, by_identity(written.clone()));

    let res = export(&app, "table=users", None).await;
    let (records, _) = ndjson(&res.text().await.unwrap());
    assert_eq!(by_identity(records), by_identity(written));
}

#[tokio::test]
async fn the_key_prefix_keeps_only_the_keys_that_start_with_it() {
    let app = small_pages().await;
    let mut written = users(300, "alpha_");
    written.extend(users(300, "beta_"));
    // "al" and "alpha" differ; LIKE wildcards are plain characters here.
    written.extend(users(20, "al%_"));
    write_all(&app, "users", &written).await;

    let res = export(&app, "table=users&key_prefix=alpha_", None).await;
    let (records, last) = ndjson(&res.text().await.unwrap());
    assert_eq!(last["end"]["records"], json!(300));
    let expected: Vec<_> = written
        .iter()
        .filter(|(k, _, _)| k.starts_with("alpha_"))
        .cloned()
        .collect();
    assert_eq!(by_identity(records), by_identity(expected));

    let res = export(&app, "table=users&key_prefix=al%25_", Some("text/csv")).await;
    let got = csv(&res.text().await.unwrap());
    assert_eq!(got.len(), 20);
    assert!(got.iter().all(|(k, _, _)| k.starts_with("al%_")));
}

#[tokio::test]
async fn an_unknown_table_or_a_bad_filter_is_a_problem_and_streams_nothing() {
    let app = small_pages().await;
    let res = export(&app, "table=nope", None).await;
    let body = assert_problem(res, 404).await;
    assert_eq!(body["type"], "urn:shardgate:problem:unknown-table");
    assert!(body["detail"].as_str().unwrap().contains("nope"), "{body}");

    let res = export(&app, "key_prefix=a", None).await;
    assert_problem(res, 400).await;

    let res = export(&app, "table=users&key_prefix=", None).await;
    let body = assert_problem(res, 400).await;
    assert!(
        body["detail"].as_str().unwrap().contains("key_prefix"),
        "{body}"
    );

    let long = "k".repeat(257);
    let res = export(&app, &format!("table=users&key_prefix={long}"), None).await;
    let body = assert_problem(res, 400).await;
    assert!(
        body["detail"].as_str().unwrap().contains("key_prefix"),
        "{body}"
    );

    let res = export(&app, "table=users&key_prefix=%00", None).await;
    assert_problem(res, 400).await;
}

#[tokio::test]
async fn under_concurrent_writes_every_record_that_exists_throughout_appears_once() {
    let app = small_pages().await;
    let stable = users(3000, "stable_");
    write_all(&app, "users", &stable).await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (client, url, stop) = (app.client.clone(), app.url("/api/bulk-write"), stop.clone());
        tokio::spawn(async move {
            let mut round = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Updates of stable records (their updated_at and version move on),
                // new records and deletions of earlier new ones, all while the export runs.
                let updates: Vec<Value> = (0..40)
                    .map(|j| {
                        let i = ((round * 40 + j) * 7) % 3000;
                        json!({"shard_key": format!("stable_{}", i % 97), "id": format!("r{i}"),
                               "data": {"i": i, "name": format!("user {i}"), "round": round}})
                    })
                    .chain((0..20).map(|j| {
                        json!({"shard_key": format!("churn_{j}"), "id": format!("c{round}_{j}"), "data": {"round": round}})
                    }))
                    .collect();
                let res = client
                    .post(&url)
                    .json(&json!({"table": "users", "records": updates}))
                    .send()
                    .await
                    .expect("write");
                assert_eq!(res.status().as_u16(), 200);
                round += 1;
            }
            round
        })
    };

    let mut res = export(&app, "table=users", None).await;
    assert_eq!(res.status().as_u16(), 200);
    let mut body = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = res.chunk().await.expect("the stream") {
        body.extend_from_slice(&chunk);
        chunks += 1;
        // A slow client: the writes go on between its reads.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = writer.await.unwrap();
    assert!(
        rounds >= 3,
        "only {rounds} write rounds ran during the export"
    );
    assert!(chunks > 30, "only {chunks} chunks");

    let (records, last) = ndjson(std::str::from_utf8(&body).unwrap());
    assert!(last.get("end").is_some(), "{last}");
    let got = by_identity(records);
    for (key, id, _) in &stable {
        assert!(
            got.contains_key(&(key.clone(), id.clone())),
            "{key}/{id} missing"
        );
    }
    let churn = got.keys().filter(|(k, _)| k.starts_with("churn_")).count();
    assert_eq!(got.len(), 3000 + churn);
}

/// A key of `shard` that sorts after every `user_` key: its record is read last.
fn last_key_on(app: &TestApp, shard: usize) -> String {
    (0..)
        .map(|i| format!("zzz-{i}"))
        .find(|k| app.shard_of(k).0 as usize == shard)
        .unwrap()
}

#[tokio::test]
async fn a_failure_part_way_ends_the_stream_with_an_error_not_a_truncation() {
    let app = small_pages().await;
    write_all(&app, "users", &users(1500, "user_")).await;
    // A row the gateway cannot decode, read on one of the last shard's later pages.
    let last = app.settings.cluster.shards.len() - 1;
    let key = last_key_on(&app, last);
    write_all(&app, "users", &[(key.clone(), "poison".into(), json!({}))]).await;
    let mut conn = app.connect(&app.primary(last));
    diesel::sql_query(format!(
        "UPDATE records SET updated_at = 'infinity' WHERE shard_key = '{key}'"
    ))
    .execute(&mut conn)
    .unwrap();

    let res = export(&app, "table=users", None).await;
    assert_eq!(res.status().as_u16(), 200, "streaming had begun");
    let (records, end) = ndjson(&res.text().await.unwrap());
    assert_eq!(end.get("end"), None, "{end}");
    assert_eq!(
        end["error"]["type"], "urn:shardgate:problem:undecodable-record",
        "{end}"
    );
    assert_eq!(end["error"]["shard"], json!(last));
    assert_eq!(end["error"]["records"], json!(records.len()));
    assert!(
        records.len() > 900 && records.len() < 1500,
        "{}",
        records.len()
    );
    assert_eq!(
        by_identity(records).len(),
        end["error"]["records"].as_u64().unwrap() as usize
    );

    // CSV cannot carry an error row: the connection is cut before the body's end.
    let mut res = export(&app, "table=users", Some("text/csv")).await;
    assert_eq!(res.status().as_u16(), 200);
    let ended = loop {
        match res.chunk().await {
            Ok(Some(_)) => {}
            Ok(None) => break "complete",
            Err(_) => break "cut",
        }
    };
    assert_eq!(
        ended, "cut",
        "a CSV export that stopped must not end like a complete one"
    );
}

#[tokio::test]
async fn a_shard_whose_slots_change_between_pages_stops_the_export() {
    let app = small_pages().await;
    write_all(&app, "users", &users(1500, "user_")).await;
    let spec = ExportSpec {
        table: app.cluster.tables().parse("users").unwrap(),
        key_prefix: String::new(),
        page_rows: 1000,
        page_bytes: 4096,
    };
    let mut export = Export::start(app.cluster.clone(), spec).await.unwrap();
    let first = export.next_page().await.unwrap().expect("a first page");
    assert_eq!(first.shard, ShardId(0));
    // Shard 0 is told a new map (as a slot move's switch tells it) before its 2nd page.
    let mut conn = app.connect(&app.primary(0));
    diesel::sql_query("UPDATE shardgate_map SET version = version + 1")
        .execute(&mut conn)
        .unwrap();
    match export.next_page().await {
        Err(ExportError::OwnershipChanged {
            shard,
            before,
            after,
        }) => {
            assert_eq!(shard, ShardId(0));
            assert_eq!(after.told, before.told.map(|v| v + 1));
            assert_eq!(after.slots, before.slots);
        }
        other => panic!("expected the export to stop, got {other:?}"),
    }
}

#[tokio::test]
async fn a_shard_that_cannot_be_read_fails_the_export_before_anything_is_streamed() {
    let app = small_pages().await;
    write_all(&app, "users", &users(300, "user_")).await;
    // Shard 1 loses its records table (the gateway's prepared statements go stale).
    let mut conn = app.connect(&app.primary(1));
    diesel::sql_query("ALTER TABLE records RENAME TO records_gone")
        .execute(&mut conn)
        .unwrap();

    for accept in [None, Some("text/csv")] {
        let res = export(&app, "table=users", accept).await;
        let body = assert_problem(res, 503).await;
        assert_eq!(body["shard"], json!(1), "{body}");
        assert!(
            body["detail"].as_str().unwrap().contains("shard-1"),
            "{body}"
        );
    }
}
