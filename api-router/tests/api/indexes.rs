//! `/api/indexes` through the real HTTP API: an index built on every primary (checked in
//! each primary's catalog) that the query planner then uses (`"explain": true` shows it
//! in every shard's plan), dropped from every primary; a build cancelled on one shard
//! reported `failed` with its INVALID leftover dropped, then built again when asked; a
//! build a restart stopped (an INVALID leftover, its row still `building`) resumed by
//! the background reconcile; and every kind of bad input.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shard_manager::store::query_index::IndexSpec;
use test_app::{assert_problem, spawn_app, spawn_app_with, TestApp};
use test_support::maintenance::connect_to;
use tokio_postgres::Client;

pub(crate) const TABLE: &str = "index_people";
/// Enough rows per shard that the planner prefers the index to a scan of the table.
pub(crate) const RECORDS: usize = 9000;

pub(crate) async fn seeded(records: usize) -> TestApp {
    let app = spawn_app_with(|s| s.cluster.tables.allowed.push(TABLE.into())).await;
    let all: Vec<Value> = (0..records)
        .map(|i| {
            json!({"shard_key": format!("k{i}"), "id": format!("i{i}"),
                   "data": {"age": (i * 7) % 90, "name": format!("n{}", i % 50)}})
        })
        .collect();
    for chunk in all.chunks(1000) {
        let res = app
            .bulk(None, &json!({"table": TABLE, "records": chunk}))
            .await;
        assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
    }
    app
}

pub(crate) async fn primary(app: &TestApp, shard: usize) -> Client {
    let db = app.settings.cluster.database.dbname.clone();
    connect_to(&app.settings.cluster, &app.primary(shard), &db).await
}

/// The index `name` in a primary's catalog: None, or Some(indisvalid).
pub(crate) async fn catalog(client: &Client, name: &str) -> Option<bool> {
    client
        .query_opt(
            "SELECT i.indisvalid FROM pg_indexes x \
             JOIN pg_class c ON c.relname = x.indexname \
             JOIN pg_index i ON i.indexrelid = c.oid \
             WHERE x.tablename = 'records' AND x.indexname = $1",
            &[&name],
        )
        .await
        .unwrap()
        .map(|r| r.get(0))
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let res = app.client.get(app.url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Polls `path` until `done` holds of its answer (at most 90 s).
pub(crate) async fn until(
    app: &TestApp,
    path: &str,
    what: &str,
    done: impl Fn(u16, &Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, body) = get(app, path).await;
        if done(status, &body) {
            return body;
        }
        assert!(Instant::now() < deadline, "never {what}: {status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(crate) async fn create(app: &TestApp, body: &Value) -> reqwest::Response {
    app.post_json("/api/indexes", None, body).await
}

async fn drop_and_wait(app: &TestApp, name: &str) {
    let res = app
        .client
        .delete(app.url(&format!("/api/indexes/{name}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202);
    gone(app, name).await;
}

/// Until `name` is dropped from every primary and forgotten.
async fn gone(app: &TestApp, name: &str) {
    until(app, &format!("/api/indexes/{name}"), "dropped", |s, _| {
        s == 404
    })
    .await;
    for shard in 0..3 {
        let p = primary(app, shard).await;
        assert_eq!(catalog(&p, name).await, None, "still on shard {shard}");
    }
}

/// Asserts that the query answer `page` has a plan from each of the three shards, each
/// with an index scan on `index`.
pub(crate) fn assert_every_shard_scans(page: &Value, index: &str, when: &str) {
    let plans = page["plans"].as_array().expect("plans");
    assert_eq!(plans.len(), 3, "{when}: {page}");
    for plan in plans {
        let mut nodes = Vec::new();
        scans(&plan["plan"]["Plan"], &mut nodes);
        assert!(
            nodes
                .iter()
                .any(|(kind, name)| kind.contains("Index Scan") && name == index),
            "{when}: shard {} did not use the index: {nodes:?}",
            plan["shard"]
        );
    }
}

/// Every plan node's `Node Type` and `Index Name`, depth first.
fn scans(plan: &Value, out: &mut Vec<(String, String)>) {
    if let Some(kind) = plan["Node Type"].as_str() {
        out.push((
            kind.to_owned(),
            plan["Index Name"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    for child in plan["Plans"].as_array().into_iter().flatten() {
        scans(child, out);
    }
}

#[tokio::test]
async fn an_index_is_built_on_every_primary_serves_queries_and_is_dropped() {
    let app = seeded(RECORDS).await;
    let spec = IndexSpec::parse(TABLE, &["age".into()]).unwrap();

    // Bad input: each a problem naming it, nothing recorded.
    let p = assert_problem(
        create(&app, &json!({"table": "nope", "fields": ["age"]})).await,
        422,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("nope"), "{p}");
    for (fields, names) in [
        (json!([]), "empty"),
        (json!(["a", "b", "c", "d", "e"]), "5 entries"),
        (json!(["age", "age"]), "twice"),
        (json!(["a b"]), "a b"),
    ] {
        let p = assert_problem(
            create(&app, &json!({"table": TABLE, "fields": fields})).await,
            400,
        )
        .await;
        assert_eq!(p["type"], "urn:shardgate:problem:invalid-index");
        assert!(p["detail"].as_str().unwrap().contains(names), "{p}");
    }
    assert_problem(create(&app, &json!({"table": TABLE})).await, 422).await;
    assert_eq!(get(&app, "/api/indexes").await.1, json!({"indexes": []}));

    // Made: 202 at once, with where to look.
    let res = create(&app, &json!({"table": TABLE, "fields": ["age"]})).await;
    assert_eq!(res.status().as_u16(), 202);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(accepted["name"], json!(spec.name()));
    assert_eq!(location, format!("/api/indexes/{}", spec.name()));
    // Asked again (a client that hung up): the same answer.
    let again = create(&app, &json!({"table": TABLE, "fields": ["age"]})).await;
    assert_eq!(again.status().as_u16(), 202);
    assert_eq!(again.headers()["location"].to_str().unwrap(), location);

    let view = until(&app, &location, "valid", |_, v| v["state"] == "valid").await;
    assert_eq!(view["table"], TABLE);
    assert_eq!(view["fields"], json!(["age"]));
    let states: Vec<&Value> = view["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["state"])
        .collect();
    assert_eq!(states, [&json!("valid"); 3], "{view}");
    for shard in 0..3 {
        let p = primary(&app, shard).await;
        assert_eq!(catalog(&p, &spec.name()).await, Some(true), "shard {shard}");
    }
    let listed = get(&app, "/api/indexes").await.1;
    assert_eq!(listed["indexes"][0]["name"], json!(spec.name()));

    // The planner uses it on every shard: a range with a sort, and a sort alone, desc.
    for (body, expect) in [
        (
            json!({"table": TABLE, "filter": [{"field": "age", "op": "gte", "value": 85}],
                   "sort": [{"field": "age"}], "limit": 20, "explain": true, "consistency": "strong"}),
            "range",
        ),
        (
            json!({"table": TABLE, "sort": [{"field": "age", "order": "desc"}],
                   "limit": 20, "explain": true, "consistency": "strong"}),
            "sort",
        ),
    ] {
        let res = app.post_json("/api/query", None, &body).await;
        assert_eq!(res.status().as_u16(), 200);
        let page: Value = res.json().await.unwrap();
        let ages: Vec<i64> = page["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["data"]["age"].as_i64().unwrap())
            .collect();
        assert_eq!(ages.len(), 20, "{expect}");
        match expect {
            "range" => assert!(
                ages.windows(2).all(|w| w[0] <= w[1]) && ages[0] >= 85,
                "{ages:?}"
            ),
            _ => assert!(
                ages.windows(2).all(|w| w[0] >= w[1]) && ages[0] == 89,
                "{ages:?}"
            ),
        }
        assert_every_shard_scans(&page, &spec.name(), expect);
    }
    // Without `explain`, no plans.
    let page: Value = app
        .post_json("/api/query", None, &json!({"table": TABLE, "limit": 1}))
        .await
        .json()
        .await
        .unwrap();
    assert!(page.get("plans").is_none(), "{page}");

    // Dropped from every primary (while it is dropped, asking for it is refused); then
    // unknown.
    let res = app.client.delete(app.url(&location)).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 202);
    let res = create(&app, &json!({"table": TABLE, "fields": ["age"]})).await;
    if res.status().as_u16() != 202 {
        let p = assert_problem(res, 409).await;
        assert_eq!(p["type"], "urn:shardgate:problem:index-dropping", "{p}");
        gone(&app, &spec.name()).await;
    } else {
        // The drop had ended already: made anew; drop it again.
        drop_and_wait(&app, &spec.name()).await;
    }
    assert_eq!(get(&app, "/api/indexes").await.1, json!({"indexes": []}));
    let res = app
        .client
        .delete(app.url(&format!("/api/indexes/{}", spec.name())))
        .send()
        .await
        .unwrap();
    assert_problem(res, 404).await;
}

#[tokio::test]
async fn a_cancelled_build_is_reported_failed_its_leftover_dropped_and_built_again_when_asked() {
    let app = seeded(300).await;
    let spec = IndexSpec::parse(TABLE, &["name".into()]).unwrap();
    let name = spec.name();
    // A writer's open transaction on shard 0 holds the build there after its catalog
    // entry is made (CONCURRENTLY waits for writers), so it can be caught and cancelled.
    let writer = primary(&app, 0).await;
    writer
        .batch_execute("BEGIN; LOCK TABLE records IN ROW EXCLUSIVE MODE")
        .await
        .unwrap();
    let watcher = primary(&app, 0).await;
    let res = create(&app, &json!({"table": TABLE, "fields": ["name"]})).await;
    assert_eq!(res.status().as_u16(), 202);
    let db = app.settings.cluster.database.dbname.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    let pid: i32 = loop {
        let row = watcher
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 \
                 AND query LIKE 'CREATE INDEX CONCURRENTLY%' AND wait_event_type = 'Lock'",
                &[&db],
            )
            .await
            .unwrap();
        if let Some(row) = row {
            break row.get(0);
        }
        assert!(
            Instant::now() < deadline,
            "the build never waited on shard 0"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        catalog(&watcher, &name).await,
        Some(false),
        "half made while it waits"
    );
    let (_, view) = get(&app, &format!("/api/indexes/{name}")).await;
    assert_eq!(view["shards"][0]["state"], "building", "{view}");
    let cancelled: bool = watcher
        .query_one("SELECT pg_cancel_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(cancelled);
    let view = until(&app, &format!("/api/indexes/{name}"), "failed", |_, v| {
        v["shards"][0]["state"] == "failed"
    })
    .await;
    assert_eq!(view["state"], "failed", "{view}");
    assert!(
        view["shards"][0]["error"]
            .as_str()
            .unwrap()
            .contains("57014"),
        "{view}"
    );
    // The leftover's drop waits for the writer too; once it ends, it is gone.
    writer.batch_execute("ROLLBACK").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while catalog(&watcher, &name).await.is_some() {
        assert!(
            Instant::now() < deadline,
            "the INVALID leftover was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let view = until(
        &app,
        &format!("/api/indexes/{name}"),
        "others valid",
        |_, v| v["shards"][1]["state"] == "valid" && v["shards"][2]["state"] == "valid",
    )
    .await;
    assert_eq!(
        view["shards"][0]["state"], "failed",
        "never tried again unasked: {view}"
    );

    // Asked again: built where it failed.
    let res = create(&app, &json!({"table": TABLE, "fields": ["name"]})).await;
    assert_eq!(res.status().as_u16(), 202);
    until(&app, &format!("/api/indexes/{name}"), "valid", |_, v| {
        v["state"] == "valid"
    })
    .await;
    assert_eq!(catalog(&watcher, &name).await, Some(true));
    drop_and_wait(&app, &name).await;
}

#[tokio::test]
async fn a_build_a_restart_stopped_is_dropped_and_built_again() {
    let app = seeded(300).await;
    let spec = IndexSpec::parse(TABLE, &["age".into(), "name".into()]).unwrap();
    let name = spec.name();
    // What a gateway that died mid-build leaves: an INVALID index on shard 1 and its
    // rows saying `building` (made here by hand: a build held by a writer, cancelled).
    let writer = primary(&app, 1).await;
    writer
        .batch_execute("BEGIN; LOCK TABLE records IN ROW EXCLUSIVE MODE")
        .await
        .unwrap();
    let builder = primary(&app, 1).await;
    let cancel = builder.cancel_token();
    let sql = spec.create_sql();
    let building = tokio::spawn(async move { builder.batch_execute(&sql).await });
    let watcher = primary(&app, 1).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while catalog(&watcher, &name).await.is_none() {
        assert!(Instant::now() < deadline, "the build never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    cancel.cancel_query(tokio_postgres::NoTls).await.unwrap();
    assert!(building.await.unwrap().is_err(), "the build was cancelled");
    writer.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        catalog(&watcher, &name).await,
        Some(false),
        "an INVALID leftover"
    );
    let meta = connect_to(
        &app.settings.cluster,
        &app.settings.cluster.metadata.address,
        &app.settings.cluster.metadata.dbname,
    )
    .await;
    meta.execute(
        "INSERT INTO query_indexes (name, table_name, fields) VALUES ($1, $2, $3)",
        &[&name, &TABLE, &spec.field_names()],
    )
    .await
    .unwrap();
    meta.execute(
        "INSERT INTO query_index_shards (name, shard, state) VALUES ($1, 1, 'building')",
        &[&name],
    )
    .await
    .unwrap();

    // The gateway's background pass takes it up: leftover dropped, built, valid.
    until(&app, &format!("/api/indexes/{name}"), "valid", |_, v| {
        v["state"] == "valid"
    })
    .await;
    for shard in 0..3 {
        let p = primary(&app, shard).await;
        assert_eq!(catalog(&p, &name).await, Some(true), "shard {shard}");
    }
    drop_and_wait(&app, &name).await;
}

/// `n` characters no compression shortens much (an LCG over the letters).
fn noise(n: usize, seed: u64) -> String {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            char::from(b'a' + ((x >> 33) % 26) as u8)
        })
        .collect()
}

#[tokio::test]
async fn an_index_belongs_to_its_table_takes_any_value_and_a_table_has_at_most_eight() {
    let app = spawn_app().await;
    let long = noise(8 * 1024, 7);
    // Already stored before the index is asked for: its build must not fail on it.
    let res = app
        .write(
            "k1",
            &json!({"table": "users", "id": "u1", "data": {"note": long}}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201, "{}", res.text().await.unwrap());
    let spec = IndexSpec::parse("users", &["note".into()]).unwrap();
    let res = create(&app, &json!({"table": "users", "fields": ["note"]})).await;
    assert_eq!(res.status().as_u16(), 202);
    let path = format!("/api/indexes/{}", spec.name());
    let view = until(&app, &path, "built", |_, v| v["state"] != "building").await;
    assert_eq!(
        view["state"], "valid",
        "a long stored value failed the build: {view}"
    );

    // Another table's records never reach it; its own take any length.
    for (table, id, len) in [("orders", "o1", 3 * 1024), ("users", "u2", 300 * 1024)] {
        let note = noise(len, len as u64);
        let res = app
            .write(
                "k1",
                &json!({"table": table, "id": id, "data": {"note": note}}),
            )
            .await;
        let status = res.status().as_u16();
        assert_eq!(status, 201, "{table}/{id}: {}", res.text().await.unwrap());
    }
    let p = primary(&app, app.shard_of("k1").index()).await;
    let def: String = p
        .query_one(
            "SELECT pg_get_indexdef($1::text::regclass)",
            &[&spec.name()],
        )
        .await
        .unwrap()
        .get(0);
    assert!(def.ends_with("WHERE (table_name = 'users'::text)"), "{def}");

    // The long values are found by the text itself, past the prefix the index holds.
    let res = app
        .post_json(
            "/api/query",
            None,
            &json!({"table": "users", "filter": [{"field": "note", "op": "eq", "value": long}],
                    "consistency": "strong"}),
        )
        .await;
    let page: Value = res.json().await.unwrap();
    let ids: Vec<&str> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["u1"], "{page}");

    // Eight indexes on a table, then a ninth is refused, naming the table.
    for i in 1..8 {
        let res = create(
            &app,
            &json!({"table": "users", "fields": [format!("f{i}")]}),
        )
        .await;
        assert_eq!(res.status().as_u16(), 202, "index {}", i + 1);
    }
    let p = assert_problem(
        create(&app, &json!({"table": "users", "fields": ["f9"]})).await,
        422,
    )
    .await;
    assert_eq!(p["type"], "urn:shardgate:problem:too-many-indexes", "{p}");
    assert!(p["detail"].as_str().unwrap().contains("\"users\""), "{p}");
    // Another table is not counted against it.
    let res = create(&app, &json!({"table": "orders", "fields": ["f1"]})).await;
    assert_eq!(res.status().as_u16(), 202);
}
