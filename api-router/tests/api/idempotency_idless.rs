//! Records sent without an id under an `Idempotency-Key`: a transaction, an atomic bulk
//! write and a plain bulk write sent twice store each record once, and the second answer
//! is the first one replayed: the same ids, `idempotency-replayed: true`. With every
//! record id-less and with ids and id-less records mixed. Every gateway derives the same
//! id with the cluster's secret; a gateway that has not read the secret refuses such
//! records (503) until it has, and serves everything else.

use std::time::{Duration, Instant};

use api_router::startup::Application;
use serde_json::{json, Value};
use test_app::{assert_problem, spawn_app_with, TestApp};

use crate::transaction::{spawn, two_shards};

const KEY: &str = "idempotency-key";
const REPLAYED: &str = "idempotency-replayed";

async fn send(app: &TestApp, path: &str, key: &str, body: &Value) -> (u16, bool, Value) {
    let res = app
        .post_json_request(path, None, body)
        .header(KEY, key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = res.status().as_u16();
    let replayed = res.headers().get(REPLAYED).map(|v| v.as_bytes()) == Some(b"true");
    (status, replayed, res.json().await.expect("JSON answer"))
}

/// The ids of `table`'s records under `key`, read from the primary.
async fn ids_under(app: &TestApp, key: &str, table: &str) -> Vec<String> {
    let res = app
        .get(
            key,
            &format!("/api/read?table={table}&limit=100&consistency=strong"),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let mut ids: Vec<String> = body["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// Sends `body` to `path` twice with one key: the second answer replays the first, and
/// `records` (per shard key) are all that is stored.
async fn twice_stores_once(
    app: &TestApp,
    path: &str,
    idempotency_key: &str,
    body: Value,
    expect: &[(&str, usize)],
) -> Value {
    let (status, replayed, first) = send(app, path, idempotency_key, &body).await;
    assert_eq!(status, 200, "{first}");
    assert!(!replayed, "the first answer is no replay");
    let before: Vec<Vec<String>> = {
        let mut all = Vec::new();
        for (key, count) in expect {
            let ids = ids_under(app, key, "orders").await;
            assert_eq!(ids.len(), *count, "{key}: {ids:?}");
            all.push(ids);
        }
        all
    };
    let (status, replayed, again) = send(app, path, idempotency_key, &body).await;
    assert_eq!(status, 200, "the retry: {again}");
    assert!(replayed, "the retry is answered as a replay: {again}");
    for ((key, _), ids) in expect.iter().zip(&before) {
        assert_eq!(
            &ids_under(app, key, "orders").await,
            ids,
            "{key}: the retry stored nothing new"
        );
    }
    assert_eq!(again["results"], first["results"], "the same answer");
    first
}

#[tokio::test]
async fn a_transaction_of_idless_records_sent_again_stores_each_once() {
    let app = spawn().await;
    let (a, b) = two_shards(&app);
    // The repro: one id-less operation.
    let one = json!({"operations": [{"table": "orders", "shard_key": &a, "data": {"n": 1}}]});
    let first = twice_stores_once(&app, "/api/transaction", "t-1", one, &[(&a, 1)]).await;
    assert_eq!(first["results"][0]["created"], true);

    // Across two shards, every record id-less.
    let (c, d) = (format!("{a}-c"), format!("{b}-d"));
    let all = json!({"operations": [
        {"table": "orders", "shard_key": &c, "data": {"n": 1}},
        {"table": "orders", "shard_key": &c, "data": {"n": 2}},
        {"table": "orders", "shard_key": &d, "data": {"n": 3}},
    ]});
    let first = twice_stores_once(&app, "/api/transaction", "t-2", all, &[(&c, 2), (&d, 1)]).await;
    let ids: Vec<&str> = (0..3)
        .map(|i| first["results"][i]["id"].as_str().unwrap())
        .collect();
    assert_ne!(ids[0], ids[1], "each id-less record has its own id");

    // Ids and id-less records mixed (answered 422 idempotency-entries-incomplete before).
    let (e, f) = (format!("{a}-e"), format!("{b}-f"));
    let mixed = json!({"operations": [
        {"table": "orders", "shard_key": &e, "id": "named", "data": {"n": 1}},
        {"table": "orders", "shard_key": &e, "data": {"n": 2}},
        {"table": "orders", "shard_key": &f, "data": {"id": "in-data", "n": 3}},
        {"table": "orders", "shard_key": &f, "data": {"n": 4}},
    ]});
    let first =
        twice_stores_once(&app, "/api/transaction", "t-3", mixed, &[(&e, 2), (&f, 2)]).await;
    assert_eq!(first["results"][0]["id"], "named");
    assert_eq!(first["results"][2]["id"], "in-data");

    // The same records without a key are new records each time: the key is what names them.
    let (status, _, _) = send(
        &app,
        "/api/transaction",
        "t-4",
        &json!({"operations": [{"table": "orders", "shard_key": &a, "data": {"n": 1}}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        ids_under(&app, &a, "orders").await.len(),
        2,
        "another key, another record"
    );
}

#[tokio::test]
async fn an_atomic_bulk_write_of_idless_records_sent_again_stores_each_once() {
    let app = spawn().await;
    let (a, b) = two_shards(&app);
    let all = json!({"table": "orders", "atomic": true, "records": [
        {"shard_key": &a, "data": {"n": 1}},
        {"shard_key": &b, "data": {"n": 2}},
    ]});
    twice_stores_once(&app, "/api/bulk-write", "ab-1", all, &[(&a, 1), (&b, 1)]).await;
    let (c, d) = (format!("{a}-c"), format!("{b}-d"));
    let mixed = json!({"table": "orders", "atomic": true, "records": [
        {"shard_key": &c, "id": "named", "data": {"n": 1}},
        {"shard_key": &c, "data": {"n": 2}},
        {"shard_key": &d, "data": {"n": 3}},
    ]});
    twice_stores_once(&app, "/api/bulk-write", "ab-2", mixed, &[(&c, 2), (&d, 1)]).await;
}

#[tokio::test]
async fn a_plain_bulk_write_of_idless_records_sent_again_stores_each_once() {
    let app = spawn().await;
    let (a, b) = two_shards(&app);
    for (n, records) in [
        (
            "all",
            json!([
                {"shard_key": &a, "data": {"n": 1}},
                {"shard_key": &a, "data": {"n": 2}},
                {"shard_key": &b, "data": {"n": 3}},
            ]),
        ),
        (
            "mixed",
            json!([
                {"shard_key": &a, "id": "named", "data": {"n": 1}},
                {"shard_key": &a, "data": {"n": 2}},
                {"shard_key": &b, "data": {"id": "in-data", "n": 3}},
            ]),
        ),
    ] {
        let before_a = ids_under(&app, &a, "orders").await.len();
        let before_b = ids_under(&app, &b, "orders").await.len();
        let body = json!({"table": "orders", "records": records});
        let key = format!("pb-{n}");
        let (status, replayed, first) = send(&app, "/api/bulk-write", &key, &body).await;
        assert_eq!((status, replayed), (200, false), "{first}");
        assert_eq!(first["written"], 3, "{first}");
        let ids_a = ids_under(&app, &a, "orders").await;
        let ids_b = ids_under(&app, &b, "orders").await;
        assert_eq!((ids_a.len(), ids_b.len()), (before_a + 2, before_b + 1));
        let (status, replayed, again) = send(&app, "/api/bulk-write", &key, &body).await;
        assert_eq!((status, replayed), (200, true), "{n}: {again}");
        assert_eq!(again["written"], 3, "{again}");
        assert_eq!(ids_under(&app, &a, "orders").await, ids_a, "{n}");
        assert_eq!(ids_under(&app, &b, "orders").await, ids_b, "{n}");
    }
}

/// Another gateway on `app`'s databases, its settings adjusted; its base URL and handle.
async fn another_gateway(
    app: &TestApp,
    adjust: impl FnOnce(&mut api_router::server::settings::Settings),
) -> (String, actix_web::dev::ServerHandle) {
    let mut settings = app.settings.clone();
    adjust(&mut settings);
    let built = Application::build(settings).await.expect("another gateway");
    let url = format!("http://127.0.0.1:{}", built.port());
    let handle = built.handle();
    tokio::spawn(built.run_until_stopped());
    (url, handle)
}

/// POSTs `body` to `base` + `path` with `x-shard-key: shard_key` and the idempotency
/// key `key`, if any; the status and the answer.
async fn post(
    app: &TestApp,
    base: &str,
    path: &str,
    (shard_key, key): (&str, Option<&str>),
    body: &Value,
) -> (u16, reqwest::Response) {
    let mut req = app
        .client
        .post(format!("{base}{path}"))
        .header("x-shard-key", shard_key)
        .json(body);
    if let Some(key) = key {
        req = req.header(KEY, key);
    }
    let res = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {base}{path}: {e}"));
    (res.status().as_u16(), res)
}

/// A gateway whose answers are kept one second: a request sent again after that is no
/// replay, and finds its record only if it derives the id the first try derived.
async fn short_lived_answers() -> TestApp {
    spawn_app_with(|s| s.server.idempotency_ttl_secs = 1).await
}

/// Sends an id-less write with key `key` through `first`, then, its answer expired, the
/// same request through `second`: the second finds the first's record (the same id,
/// `created: false`), and the key's records are that one.
async fn the_same_id_through(app: &TestApp, first: &str, second: &str, shard_key: &str, key: &str) {
    let write = json!({"table": "orders", "data": {"n": 1}});
    let (status, res) = post(app, first, "/api/write", (shard_key, Some(key)), &write).await;
    assert_eq!(status, 201);
    let made: Value = res.json().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, res) = post(app, second, "/api/write", (shard_key, Some(key)), &write).await;
    let found: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["id"], made["id"], "{made} then {found}");
    assert_eq!(found["created"], false, "{found}");
    assert!(
        found["version"].as_i64() > made["version"].as_i64(),
        "{made} then {found}"
    );
    assert_eq!(ids_under(app, shard_key, "orders").await.len(), 1);
}

#[tokio::test]
async fn every_gateway_derives_the_same_id_for_a_record_sent_without_one() {
    let app = short_lived_answers().await;
    let (other, _handle) = another_gateway(&app, |_| {}).await;
    the_same_id_through(&app, &app.address, &other, "derived-1", "w-1").await;
    the_same_id_through(&app, &other, &app.address, "derived-2", "w-2").await;
}

/// Forwards connections on `listener` to `to` (the metadata server, reached late).
async fn forward(listener: tokio::net::TcpListener, to: String) {
    while let Ok((mut client, _)) = listener.accept().await {
        let to = to.clone();
        tokio::spawn(async move {
            if let Ok(mut server) = tokio::net::TcpStream::connect(&to).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
    }
}

#[tokio::test]
async fn a_gateway_without_the_secret_refuses_only_idless_records_under_a_key_until_it_reads_it() {
    let app = short_lived_answers().await;
    // A gateway started while its metadata database does not answer (nothing listens on
    // the port yet): the configuration's map, no keys (loopback only), no secret.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let late = format!("127.0.0.1:{port}");
    let (blind, _handle) = another_gateway(&app, |s| {
        s.cluster.metadata.address = late.clone();
    })
    .await;
    let (a, b) = two_shards(&app);

    // Records without an id under a key: refused, 503 naming the metadata database,
    // nothing written, whichever the route.
    let idless = json!({"table": "orders", "data": {"n": 1}});
    let (_, res) = post(&app, &blind, "/api/write", (&a, Some("b-1")), &idless).await;
    assert_eq!(res.headers()["retry-after"], "1");
    let problem = assert_problem(res, 503).await;
    assert_eq!(
        problem["type"],
        "urn:shardgate:problem:record-id-unavailable"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("metadata database"),
        "{problem}"
    );
    let txn = json!({"operations": [
        {"table": "orders", "shard_key": &a, "id": "named", "data": {"n": 1}},
        {"table": "orders", "shard_key": &b, "data": {"n": 2}},
    ]});
    let (_, res) = post(&app, &blind, "/api/transaction", (&a, Some("b-2")), &txn).await;
    assert_problem(res, 503).await;
    for atomic in [false, true] {
        let bulk = json!({"table": "orders", "atomic": atomic, "records": [
            {"shard_key": &a, "id": "named", "data": {"n": 1}},
            {"shard_key": &b, "data": {"n": 2}},
        ]});
        let key = format!("b-3-{atomic}");
        let (_, res) = post(&app, &blind, "/api/bulk-write", (&a, Some(&key)), &bulk).await;
        let problem = assert_problem(res, 503).await;
        assert_eq!(
            problem["type"],
            "urn:shardgate:problem:record-id-unavailable"
        );
    }
    assert!(ids_under(&app, &a, "orders").await.is_empty());
    assert!(ids_under(&app, &b, "orders").await.is_empty());

    // The same records with their ids, or without a key: written.
    let named = json!({"table": "orders", "id": "named", "data": {"n": 1}});
    let (status, _) = post(&app, &blind, "/api/write", (&a, Some("b-4")), &named).await;
    assert_eq!(status, 201);
    let (status, _) = post(&app, &blind, "/api/write", (&b, None), &idless).await;
    assert_eq!(status, 201);

    // The metadata database answers: the gateway reads the secret within seconds, and
    // derives the id the other gateway derives.
    let listener = tokio::net::TcpListener::bind(&late)
        .await
        .expect("the port");
    let meta = app.settings.cluster.metadata.address.clone();
    let forwarder = tokio::spawn(forward(listener, meta));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = post(&app, &blind, "/api/write", (&a, Some("b-5")), &idless).await;
        if status == 201 {
            break;
        }
        assert_eq!(status, 503);
        assert!(Instant::now() < deadline, "no secret within 10 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    the_same_id_through(&app, &app.address, &blind, "derived-3", "b-6").await;
    forwarder.abort();
}
