//! Health, placement, OpenAPI and Swagger UI.

use serde_json::Value;
use test_app::spawn_app;

#[tokio::test]
async fn health_reports_every_server_with_replica_lag() {
    let app = spawn_app().await;

    let res = app.client.get(app.url("/api/health")).send().await.unwrap();

    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["healthy"], true);
    let live: Value = app.get_json("/api/health/live").await;
    assert_eq!(live["status"], "ok");
    let shards = body["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 3);
    for (i, shard) in shards.iter().enumerate() {
        assert_eq!(shard["primary"]["server"], app.primary(i).as_str());
        assert_eq!(shard["primary"]["up"], true);
        let replica = &shard["replicas"][0];
        assert_eq!(replica["server"], app.replica(i).as_str());
        assert_eq!(replica["up"], true);
        assert!(replica["lag_bytes"].is_u64(), "lag is measured: {replica}");
    }
}

#[tokio::test]
async fn locate_and_shards_show_the_slot_map() {
    let app = spawn_app().await;

    let located: Value = app.get_json("/api/shards/locate?key=user_123").await;
    let shards: Value = app.get_json("/api/shards").await;

    // Fixed vector (see shard-manager router tests): user_123 -> slot 349 -> shard 1.
    assert_eq!(located["hash"], "6b32cffc057a0d5d");
    assert_eq!(located["slot"], 349);
    assert_eq!(located["shard"], 1);
    assert_eq!(located["primary"], app.primary(1).as_str());
    assert_eq!(shards["slot_count"], 1024);
    assert_eq!(shards["shards"][1]["slots"][0], "342-682");
    assert_eq!(shards["shards"][1]["servers"][0]["role"], "primary");

    app.write(
        "user_123",
        &serde_json::json!({"table": "orders", "id": "o1", "data": {}}),
    )
    .await;
    app.write(
        "user_123",
        &serde_json::json!({"table": "orders", "id": "o2", "data": {}}),
    )
    .await;
    // Counted on the replica: poll until it has replayed both writes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let data = loop {
        let counted: Value = app.get_json("/api/shards?data=true").await;
        let data = counted["shards"][1]["data"].clone();
        if data["rows"]["orders"] == 2 || std::time::Instant::now() > deadline {
            break data;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(data["rows"]["orders"], 2, "{data}");
    assert!(
        data["rows"].get("users").is_none(),
        "only tables with rows: {data}"
    );
    assert!(data["table_bytes"].as_i64().unwrap() > 8192, "{data}");
    assert!(data["database_bytes"].as_i64() > data["table_bytes"].as_i64());
    let light: Value = app.get_json("/api/shards").await;
    assert!(light["shards"][1].get("data").is_none());
}

#[tokio::test]
async fn openapi_documents_every_endpoint_and_swagger_ui_is_served_offline() {
    let app = spawn_app().await;

    let spec: Value = app.get_json("/api-docs/openapi.json").await;
    let ui = app
        .client
        .get(app.url("/swagger-ui/"))
        .send()
        .await
        .unwrap();
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/swagger-ui"))
        .send()
        .await
        .unwrap();

    for path in [
        "/api/write",
        "/api/read",
        "/api/bulk-write",
        "/api/delete",
        "/api/health",
        "/api/shards",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} is documented");
    }
    assert!(spec["components"]["schemas"]["Problem"].is_object());
    assert_eq!(ui.status().as_u16(), 200);
    let html = ui.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "the UI page itself");
    assert!(!html.contains("cdn"), "no CDN: assets come from the binary");
    assert_eq!(redirect.status().as_u16(), 308);
    let js = app
        .client
        .get(app.url("/swagger-ui/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status().as_u16(), 200, "the bundle is embedded");
}

#[tokio::test]
async fn numeric_modulo_routing_places_ids_by_value_and_refuses_other_keys() {
    let app = test_app::spawn_app_with(|s| {
        s.cluster.routing.strategy = shard_manager::config::Strategy::Modulo;
        s.cluster.routing.numeric = true;
    })
    .await;

    let placed: Value = app
        .write(
            "42",
            &serde_json::json!({"table": "users", "data": {"id": 1}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let refused = app
        .write("user_1", &serde_json::json!({"table": "users", "data": {}}))
        .await;
    let bulk: Value = app
        .bulk(
            None,
            &serde_json::json!({"table": "users", "records": [
            {"shard_key": "7", "data": {}}, {"shard_key": "seven", "data": {}}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let located: Value = app.get_json("/api/shards/locate?key=43").await;

    assert_eq!(placed["shard"], 0, "42 mod 3");
    let problem = test_app::assert_problem(refused, 400).await;
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("not an integer"));
    assert_eq!(bulk["written"], 1);
    assert_eq!(bulk["failed"][0]["index"], 1);
    assert_eq!(
        (located["strategy"].as_str(), located["shard"].as_u64()),
        (Some("modulo"), Some(1))
    );
}
