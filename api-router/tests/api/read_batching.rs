//! Point reads that arrive together leave together: many concurrent reads each get
//! their own record, exactly, and `/metrics` shows batches that carried more than one
//! read (`shardgate_batch_size`, kind `read`), as `/api/shards` does per server.

use futures_util::future::join_all;
use serde_json::{json, Value};
use test_app::{json_of, spawn_app};

const RECORDS: usize = 40;
const READS: usize = 400;

/// (sum, count) of the `shardgate_batch_size` histograms of kind `read`.
fn read_batches(metrics: &str) -> (f64, f64) {
    let mut total = (0.0, 0.0);
    for line in metrics.lines() {
        let value = |l: &str| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap();
        if line.starts_with("shardgate_batch_size_sum{kind=\"read\"") {
            total.0 += value(line);
        } else if line.starts_with("shardgate_batch_size_count{kind=\"read\"") {
            total.1 += value(line);
        }
    }
    total
}

#[tokio::test]
async fn concurrent_point_reads_share_sends_and_each_gets_its_own_record() {
    let app = spawn_app().await;
    for i in 0..RECORDS {
        let res = app
            .write(
                &format!("batch-{i}"),
                &json!({"table": "users", "id": format!("r{i}"), "data": {"i": i}}),
            )
            .await;
        assert_eq!(res.status(), 201);
    }
    let reads = (0..READS).map(|n| {
        let app = &app;
        async move {
            let i = n % RECORDS;
            let res = app
                .read_strong(&format!("batch-{i}"), "users", &format!("r{i}"))
                .await;
            assert_eq!(res.status(), 200, "read {n}");
            let body: Value = res.json().await.unwrap();
            (i, body)
        }
    });
    for (i, body) in join_all(reads).await {
        assert_eq!(body["record"]["id"], format!("r{i}"), "{body}");
        assert_eq!(body["record"]["data"]["i"], i, "{body}");
        assert_eq!(body["record"]["shard_key"], format!("batch-{i}"), "{body}");
    }
    // A missing record in the crowd is missing, alone.
    let missing = app.read_strong("batch-0", "users", "nope").await;
    assert_eq!(missing.status(), 404);

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (reads, batches) = read_batches(&metrics);
    assert!(
        reads >= READS as f64,
        "every read counted: {reads}\n{metrics}"
    );
    assert!(
        reads > batches,
        "some batch carried more than one read: {reads} reads in {batches} batches"
    );
    eprintln!(
        "{reads} point reads in {batches} batches ({:.1} a batch)",
        reads / batches
    );

    // `/api/shards` (the dashboard's servers table) shows the same batches per server.
    let shards = json_of(app.client.get(app.url("/api/shards"))).await;
    let servers = shards["shards"].as_array().unwrap().iter();
    let (mut shown_reads, mut shown_batches) = (0.0, 0.0);
    for server in servers.flat_map(|s| s["servers"].as_array().unwrap()) {
        let counts = &server["read_batches"];
        shown_reads += counts["requests"].as_f64().expect("read_batches.requests");
        shown_batches += counts["batches"].as_f64().expect("read_batches.batches");
        assert!(server["write_batches"]["batches"].is_u64(), "{server}");
    }
    // Reads may have been counted between the two answers (the gateway's own checks do
    // not count; nothing else reads), never fewer.
    assert!(
        shown_reads >= reads && shown_batches >= batches && shown_reads > shown_batches,
        "/api/shards: {shown_reads} reads in {shown_batches} batches; /metrics: {reads} in {batches}"
    );
}
