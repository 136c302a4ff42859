//! A row the gateway cannot decode (a value set directly in SQL that has no JSON
//! form, here `updated_at = 'infinity'`) is a 500 naming the shard and the record: the
//! data is at fault, not the server, so the server is neither marked down nor banned,
//! and its other records keep being served on the same connections.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use serde_json::{json, Value};
use test_app::{assert_problem, spawn_app, TestApp};

fn key_on(app: &TestApp, shard: u32) -> String {
    (0..)
        .map(|i| format!("undecodable-{i}"))
        .find(|k| app.shard_of(k).0 == shard)
        .unwrap()
}

/// Every server of `shard` as /api/health shows it: answering its probe, and up and
/// not banned in the gateway's own view (which traffic sets).
async fn assert_servers_fine(app: &TestApp, shard: usize) {
    let health: Value = app.get_json("/api/health").await;
    let shard = &health["shards"][shard];
    let replicas = shard["replicas"].as_array().unwrap();
    assert!(!replicas.is_empty());
    for server in replicas.iter().chain([&shard["primary"]]) {
        assert_eq!(server["up"], true, "{server}");
        let seen = &server["gateway"];
        assert_eq!(seen["up"], true, "{server}");
        assert_eq!(seen["banned"], false, "{server}");
        assert_eq!(seen["down_reason"], Value::Null, "{server}");
    }
}

fn assert_names_the_record(problem: &Value, id: &str) {
    assert_eq!(problem["type"], "urn:shardgate:problem:undecodable-record");
    assert_eq!(problem["shard"], 1);
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("shard-1") && detail.contains(id) && detail.contains("updated_at"),
        "{detail}"
    );
}

#[tokio::test]
async fn an_undecodable_row_is_a_500_naming_the_record_and_leaves_its_server_up() {
    let app = spawn_app().await;
    let key = key_on(&app, 1);
    for id in ["bad", "good"] {
        let res = app
            .write(
                &key,
                &json!({"table": "events", "id": id, "data": {"id": id}}),
            )
            .await;
        assert!(res.status().is_success(), "{}", res.status());
    }
    // Warm the primary's connections, then break one row behind the gateway's back.
    assert_eq!(app.read_strong(&key, "events", "good").await.status(), 200);
    app.connect(&app.primary(1))
        .batch_execute("UPDATE records SET updated_at = 'infinity' WHERE id = 'bad'")
        .unwrap();

    // The point read and the list that holds the row name it.
    let problem = assert_problem(app.read_strong(&key, "events", "bad").await, 500).await;
    assert_names_the_record(&problem, "bad");
    assert_servers_fine(&app, 1).await;
    let list = app
        .get(&key, "/api/read?table=events&consistency=strong")
        .await;
    assert_names_the_record(&assert_problem(list, 500).await, "bad");
    assert_servers_fine(&app, 1).await;

    // The same server keeps serving its other records.
    for _ in 0..5 {
        let res = app.read_strong(&key, "events", "good").await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["record"]["data"]["id"], "good");
    }

    // A replica that replayed the row answers the same, and is not banned for it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let eventual = loop {
        let res = app.get(&key, "/api/read?table=events").await;
        if res.status() != 200 {
            break res;
        }
        assert!(
            Instant::now() < deadline,
            "the replica never replayed the row"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_names_the_record(&assert_problem(eventual, 500).await, "bad");
    assert_servers_fine(&app, 1).await;
    assert_eq!(app.read_strong(&key, "events", "good").await.status(), 200);
}
