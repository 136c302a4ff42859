//! A server restarted while the gateway sat idle costs no request an error.
//!
//! Its pooled connections all died with it, and the pool does not test connections
//! before reuse (no test query per request). The gateway still answers every request:
//! the pool drops connections whose socket has closed, and an operation whose reused
//! connection proves dead is retried once on another connection.
//!
//! - `a_primary_restarted_while_idle_costs_no_write_an_error`: 8 concurrent writes to
//!   shard 1 open several connections to its primary; the primary is stopped and
//!   started again with no traffic in between; then 8 concurrent writes and 8 strong
//!   reads all succeed at the first try, and the reads return the new versions.

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use test_app::spawn_app;
use test_support::outage::{serial, DropDatabase, Node, Outage};

use crate::support::keys_on;

#[tokio::test]
async fn a_primary_restarted_while_idle_costs_no_write_an_error() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let _db = DropDatabase(app.settings.cluster.database.dbname.clone());
    let keys = keys_on(&app.settings, 1, 8);
    let app = &app;
    let write = async |key: &str, n: u32| {
        let body = json!({"table": "users", "id": key, "data": {"n": n}});
        app.write(key, &body).await
    };

    for res in join_all(keys.iter().map(|k| write(k.as_str(), 1))).await {
        assert_eq!(res.status(), StatusCode::CREATED);
    }

    Outage::begin(&[Node::Primary(1)]).await.end().await;

    let mut versions = Vec::new();
    for res in join_all(keys.iter().map(|k| write(k.as_str(), 2))).await {
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "first write after restart: {body}");
        versions.push(body["version"].as_i64().unwrap());
    }
    let reads = keys.iter().map(|k| app.read_strong(k, "users", k));
    for (res, version) in join_all(reads).await.into_iter().zip(versions) {
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "strong read after restart: {body}");
        assert_eq!(body["record"]["version"], version, "{body}");
        assert_eq!(body["record"]["data"], json!({"n": 2}), "{body}");
    }
}
