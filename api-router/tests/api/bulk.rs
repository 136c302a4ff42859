//! Bulk writes: grouped by shard, bad records reported by index, others written.

use std::collections::HashMap;

use serde_json::{json, Value};
use test_app::{assert_problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_batch_across_shards_writes_the_good_records_and_names_the_bad_ones() {
    let app = spawn_app().await;
    let mut records: Vec<Value> = (0..60)
        .map(|i| json!({"shard_key": format!("user_{i}"), "id": format!("r{i}"), "data": {"i": i}}))
        .collect();
    records.insert(10, json!({"shard_key": "bad", "data": "not an object"}));
    records.insert(20, json!({"data": {"uses": "the header key"}}));
    records.insert(30, json!({"shard_key": "", "data": {}}));

    let res = app
        .bulk(
            Some("header_key"),
            &json!({"table": "events", "records": records}),
        )
        .await;

    assert_eq!(res.status().as_u16(), 207, "partial success");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["written"], 61);
    let failed: Vec<(u64, String)> = body["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["index"].as_u64().unwrap(),
                f["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0].0, 10);
    assert!(failed[0].1.contains("must be a JSON object"));
    assert_eq!(failed[1].0, 30);
    assert!(failed[1].1.contains("empty"));

    let mut expected: HashMap<u64, u64> = HashMap::new();
    for i in 0..60 {
        *expected
            .entry(u64::from(app.shard_of(&format!("user_{i}")).0))
            .or_default() += 1;
    }
    *expected
        .entry(u64::from(app.shard_of("header_key").0))
        .or_default() += 1;
    for s in body["shards"].as_array().unwrap() {
        let shard = s["shard"].as_u64().unwrap();
        assert_eq!(
            s["written"].as_u64(),
            expected.get(&shard).copied(),
            "shard {shard}"
        );
    }
    let read: Value = app
        .read_strong("user_42", "events", "r42")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["record"]["data"], json!({"i": 42}));
    let list: Value = app
        .get("header_key", "/api/read?table=events&consistency=strong")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["records"][0]["data"],
        json!({"uses": "the header key"})
    );
}

#[tokio::test]
async fn duplicates_in_a_batch_keep_the_last_and_report_the_earlier() {
    let app = spawn_app().await;
    let records = json!([
        {"shard_key": "d", "id": "same", "data": {"n": 1}},
        {"shard_key": "d", "id": "same", "data": {"n": 2}},
    ]);

    let body: Value = app
        .bulk(None, &json!({"table": "users", "records": records}))
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(body["written"], 1);
    assert_eq!(body["failed"][0]["index"], 0);
    assert!(body["failed"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("superseded by record 1"));
    let read: Value = app
        .read_strong("d", "users", "same")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["record"]["data"], json!({"n": 2}));
}

#[tokio::test]
async fn batch_limits_and_all_invalid_batches_are_problems() {
    let app = spawn_app_with(|s| s.server.max_batch_records = 5).await;
    let six: Vec<Value> = (0..6)
        .map(|i| json!({"shard_key": "k", "id": i, "data": {}}))
        .collect();

    let too_many = assert_problem(
        app.bulk(None, &json!({"table": "users", "records": six}))
            .await,
        413,
    )
    .await;
    assert!(too_many["detail"]
        .as_str()
        .unwrap()
        .contains("more than 5 records; at most 5"));

    let all_bad =
        json!({"table": "users", "records": [{"data": {}}, {"shard_key": "k", "data": 1}]});
    let rejected = assert_problem(app.bulk(None, &all_bad).await, 422).await;
    assert_eq!(rejected["failed"][0]["index"], 0);
    assert!(rejected["failed"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("no `shard_key`"));

    assert_problem(
        app.bulk(None, &json!({"table": "users", "records": []}))
            .await,
        422,
    )
    .await;
    assert_problem(
        app.bulk(
            None,
            &json!({"table": "nope", "records": [{"shard_key": "k", "data": {}}]}),
        )
        .await,
        422,
    )
    .await;
    let list: Value = app
        .get("k", "/api/read?table=users&consistency=strong")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["count"], 0, "rejected batches wrote nothing");
}

#[tokio::test]
async fn a_large_batch_is_written_in_multi_row_statements() {
    let app = spawn_app().await;
    let records: Vec<Value> = (0..5000)
        .map(|i| json!({"shard_key": format!("bulk_{}", i % 97), "id": i, "data": {"i": i}}))
        .collect();

    let res = app
        .bulk(None, &json!({"table": "events", "records": records}))
        .await;

    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["written"], 5000, "{body}");
    assert_eq!(body["failed_count"], 0, "{body}");
    let total: u64 = body["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["written"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 5000);
}

#[tokio::test]
async fn a_record_larger_than_a_single_write_may_be_is_refused_by_index_and_not_stored() {
    let app = spawn_app().await;
    // Over server.max_body_bytes (1 MiB) as one record, well under the bulk body limit.
    let big = "x".repeat((1 << 20) + 1);
    let records = json!([
        {"shard_key": "sized", "id": "small", "data": {"n": 1}},
        {"shard_key": "sized", "id": "big", "data": {"s": big}},
    ]);

    let res = app
        .bulk(None, &json!({"table": "users", "records": records}))
        .await;

    assert_eq!(res.status().as_u16(), 207);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["written"], 1);
    assert_eq!(body["failed"][0]["index"], 1, "{body}");
    let reason = body["failed"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("at most 1048576 bytes"), "{reason}");
    let read = app.read_strong("sized", "users", "big").await;
    assert_eq!(read.status().as_u16(), 404, "nothing of the large record");
    let read = app.read_strong("sized", "users", "small").await;
    assert_eq!(read.status().as_u16(), 200);
}
