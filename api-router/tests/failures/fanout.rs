//! A read across shards with one shard down answers with the others and names the
//! missing one (206), or 503 when the client requires every shard.

use std::time::Duration;

use serde_json::{json, Value};
use test_app::{assert_problem, spawn_app_with};
use test_support::outage::{serial, Node, Outage};

#[tokio::test]
async fn fan_out_with_a_shard_down_is_partial_and_says_so() {
    let _serial = serial().await;
    let app = spawn_app_with(|s| s.cluster.replication.ban_ms = 500).await;
    let records: Vec<Value> = (0..30)
        .map(|i| json!({"shard_key": format!("fo_{i}"), "id": format!("r{i}"), "data": {"i": i}}))
        .collect();
    assert_eq!(
        app.bulk(None, &json!({"table": "users", "records": records}))
            .await
            .status()
            .as_u16(),
        200
    );
    let on_shard_1 = (0..30)
        .filter(|i| app.shard_of(&format!("fo_{i}")).index() == 1)
        .count();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let outage = Outage::begin(&[Node::Primary(1), Node::Replica(1)]).await;
    let res = app
        .client
        .get(app.url("/api/read?table=users&limit=100"))
        .send()
        .await
        .unwrap();
    let partial_header = res
        .headers()
        .get("x-partial-results")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    let strict = app
        .client
        .get(app.url("/api/read?table=users&limit=100"))
        .header("x-require-all-shards", "true")
        .send()
        .await
        .unwrap();
    let strict = assert_problem(strict, 503).await;
    outage.end().await;

    assert_eq!(status, 206);
    assert_eq!(partial_header.as_deref(), Some("true"));
    assert_eq!(body["partial"], true);
    assert_eq!(body["failed_shards"][0]["shard"], 1);
    assert!(body["failed_shards"][0]["error"]
        .as_str()
        .unwrap()
        .contains("shard-1"));
    assert_eq!(
        body["count"].as_u64().unwrap() as usize,
        30 - on_shard_1,
        "every record of the live shards"
    );
    assert!(body["records"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["shard"] != 1));
    assert!(strict["detail"].as_str().unwrap().contains("shard-1"));
}
