//! `POST /api/read-many` and `consistency=snapshot`: many point reads at one
//! consistency, each missing record named; a fan-out list at one cut; a committed
//! transaction whose coordinator left one part prepared is finished by the log before
//! a snapshot is taken (never read half); and the problems for bad input.

use diesel::sql_types::Text;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use serde_json::{json, Value};
use shard_manager::servers::connection_url;
use test_app::{assert_problem, json_of, spawn_app, spawn_app_with, TestApp};

/// A key on each of shards 0, 1 and 2.
fn keys(app: &TestApp) -> Vec<String> {
    (0..3)
        .map(|shard| {
            (0..)
                .map(|i| format!("many-{i}"))
                .find(|k| app.shard_of(k).index() == shard)
                .unwrap()
        })
        .collect()
}

async fn write_accounts(app: &TestApp, keys: &[String]) {
    for key in keys {
        let res = app
            .write(
                key,
                &json!({"table": "users", "id": key, "data": {"balance": 100}}),
            )
            .await;
        assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    }
}

async fn read_many(app: &TestApp, body: &Value) -> reqwest::Response {
    app.post_json("/api/read-many", None, body).await
}

fn reads(keys: &[String]) -> Vec<Value> {
    keys.iter()
        .map(|k| json!({"table": "users", "shard_key": k, "id": k}))
        .collect()
}

#[tokio::test]
async fn read_many_answers_every_read_and_names_each_missing_record() {
    let app = spawn_app().await;
    let keys = keys(&app);
    write_accounts(&app, &keys).await;
    let mut asked = reads(&keys);
    asked.push(json!({"table": "users", "shard_key": keys[1], "id": "nobody"}));

    for consistency in ["strong", "snapshot", "SNAPSHOT"] {
        let res = read_many(&app, &json!({"reads": asked, "consistency": consistency})).await;
        assert_eq!(res.status(), 200, "{consistency}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["consistency"], consistency.to_ascii_lowercase());
        assert_eq!(body["count"], 4);
        let found = body["records"].as_array().unwrap();
        assert_eq!(found.len(), 3, "{consistency}: {body}");
        for (i, f) in found.iter().enumerate() {
            assert_eq!(f["index"], i);
            assert_eq!(f["record"]["id"], keys[i]);
            assert_eq!(f["record"]["data"]["balance"], 100);
            assert_eq!(f["shard"], i);
        }
        assert_eq!(
            body["missing"],
            json!([{"index": 3, "table": "users", "shard_key": keys[1], "id": "nobody", "shard": 1}])
        );
        match consistency {
            "strong" => assert!(body.get("snapshot").is_none()),
            _ => {
                let cut = &body["snapshot"];
                assert_eq!(cut["id"].as_str().unwrap().len(), 32, "{cut}");
                let shards: Vec<u64> = cut["shards"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s["shard"].as_u64().unwrap())
                    .collect();
                assert_eq!(shards, [0, 1, 2]);
                for s in cut["shards"].as_array().unwrap() {
                    assert!(s["snapshot"].as_str().unwrap().contains(':'), "{s}");
                    assert!(s["lsn"].as_str().unwrap().contains('/'), "{s}");
                }
                assert_eq!(cut["finished"], 0);
            }
        }
    }

    // Eventual (the default): every read answered, from a replica or the cache once
    // the replicas have the records.
    for key in &keys {
        app.read_replica_until(key, "users", key, 1).await;
    }
    let res = read_many(&app, &json!({"reads": reads(&keys)})).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["consistency"], "eventual");
    assert_eq!(body["records"].as_array().unwrap().len(), 3, "{body}");
    assert_eq!(body["missing"], json!([]));
}

#[tokio::test]
async fn a_snapshot_fan_out_reads_every_shard_at_one_cut() {
    let app = spawn_app().await;
    let keys = keys(&app);
    write_accounts(&app, &keys).await;
    let res = app
        .client
        .get(app.url("/api/read?table=users&limit=100&consistency=snapshot"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["partial"], false);
    assert_eq!(body["count"], 3, "{body}");
    let total: i64 = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["data"]["balance"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 300);
    assert_eq!(body["snapshot"]["shards"].as_array().unwrap().len(), 3);
    assert!(body["snapshot"]["fence_us"].as_u64().is_some());
    // Without snapshot the answer names no cut.
    let plain = app.get_json("/api/read?table=users&limit=100").await;
    assert!(plain.get("snapshot").is_none(), "{plain}");
}

#[derive(QueryableByName)]
struct Gid {
    #[diesel(sql_type = Text)]
    gid: String,
}

#[tokio::test]
async fn a_committed_transaction_left_half_done_is_finished_by_the_log_before_the_cut() {
    let app = spawn_app().await;
    let keys = keys(&app);
    write_accounts(&app, &keys).await;
    // A first snapshot read: the fence's connection creates the coordinator log.
    let first = read_many(
        &app,
        &json!({"reads": reads(&keys), "consistency": "snapshot"}),
    )
    .await;
    assert_eq!(first.status(), 200);

    // A transfer of 40 from shard 0's account to shard 1's, decided `commit`, whose
    // coordinator died between its commits: shard 0's part committed, shard 1's still
    // prepared.
    let txid = "5a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d";
    let mut s0 = app.connect(&app.primary(0));
    diesel::sql_query(format!(
        "UPDATE records SET data = '{{\"balance\": 60}}' WHERE table_name = 'users' AND id = '{}'",
        keys[0]
    ))
    .execute(&mut s0)
    .unwrap();
    let mut s1 = app.connect(&app.primary(1));
    diesel::sql_query("BEGIN").execute(&mut s1).unwrap();
    diesel::sql_query(format!(
        "UPDATE records SET data = '{{\"balance\": 140}}' WHERE table_name = 'users' AND id = '{}'",
        keys[1]
    ))
    .execute(&mut s1)
    .unwrap();
    diesel::sql_query(format!("PREPARE TRANSACTION 'sg_{txid}_1'"))
        .execute(&mut s1)
        .unwrap();
    let meta = &app.settings.cluster;
    let mut db = meta.database.clone();
    db.dbname = meta.metadata.dbname.clone();
    let mut log = PgConnection::establish(&connection_url(&db, &meta.metadata.address)).unwrap();
    diesel::sql_query(format!(
        "INSERT INTO txn_log (txid, decision, shards) VALUES ('{txid}', 'commit', '{{0,1}}')"
    ))
    .execute(&mut log)
    .unwrap();

    let res = read_many(
        &app,
        &json!({"reads": reads(&keys[..2]), "consistency": "snapshot"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let balances: Vec<i64> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record"]["data"]["balance"].as_i64().unwrap())
        .collect();
    assert_eq!(
        balances,
        [60, 140],
        "the whole transfer, never half: {body}"
    );
    assert_eq!(body["snapshot"]["finished"], 1, "{body}");
    let left: Vec<Gid> =
        diesel::sql_query("SELECT gid FROM pg_prepared_xacts WHERE database = current_database()")
            .load(&mut s1)
            .unwrap();
    assert!(
        left.is_empty(),
        "still prepared: {:?}",
        left.iter().map(|g| &g.gid).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn bad_read_many_bodies_are_problems_that_name_the_fault() {
    let app = spawn_app().await;
    let one = json!([{"table": "users", "shard_key": "k", "id": "1"}]);

    let problem = assert_problem(
        read_many(&app, &json!({"reads": one, "consistency": "linearizable"})).await,
        400,
    )
    .await;
    assert_eq!(problem["type"], "urn:shardgate:problem:invalid-consistency");
    assert!(problem["detail"].as_str().unwrap().contains("snapshot"));

    let many: Vec<Value> = (0..101)
        .map(|i| json!({"table": "users", "shard_key": format!("k{i}"), "id": "1"}))
        .collect();
    let problem = assert_problem(read_many(&app, &json!({"reads": many})).await, 413).await;
    assert_eq!(problem["type"], "urn:shardgate:problem:too-many-reads");
    assert!(
        problem["detail"].as_str().unwrap().contains("100"),
        "{problem}"
    );

    let problem = assert_problem(read_many(&app, &json!({"reads": []})).await, 422).await;
    assert_eq!(problem["type"], "urn:shardgate:problem:no-reads");

    let bad_table = json!({"reads": [
        {"table": "users", "shard_key": "k", "id": "1"},
        {"table": "nope", "shard_key": "k", "id": "1"},
    ]});
    let problem = assert_problem(read_many(&app, &bad_table).await, 422).await;
    assert_eq!(problem["type"], "urn:shardgate:problem:invalid-read");
    assert_eq!(problem["operation"], 1);

    let bad_key = json!({"reads": [{"table": "users", "shard_key": {"a": 1}, "id": "1"}]});
    let problem = assert_problem(read_many(&app, &bad_key).await, 422).await;
    assert_eq!(problem["type"], "urn:shardgate:problem:invalid-read");
    assert!(problem["detail"].as_str().unwrap().contains("shard_key"));

    let res = app
        .client
        .post(app.url("/api/read-many"))
        .header("content-type", "application/json")
        .body("{\"reads\": [")
        .send()
        .await
        .unwrap();
    assert_problem(res, 400).await;

    let problem = assert_problem(
        app.client
            .get(app.url("/api/read?table=users&consistency=snapshots"))
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;
    assert_eq!(problem["type"], "urn:shardgate:problem:invalid-consistency");
}

fn ids(page: &Value) -> Vec<String> {
    page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_snapshot_list_pages_through_one_cut_on_any_gateway_until_it_expires() {
    let app = spawn_app().await;
    let second = app.beside().await;
    let other = second.address.clone();
    let keys: Vec<String> = (0..12).map(|i| format!("paged-{i:02}")).collect();
    write_accounts(&app, &keys).await;
    let list = |base: &str, cursor: Option<&str>| {
        let mut url = format!("{base}/api/read?table=users&limit=5&consistency=snapshot");
        if let Some(c) = cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        url
    };
    let first = json_of(app.client.get(list(&app.address, None))).await;
    // Newest first: the last five written.
    assert_eq!(
        ids(&first),
        ["paged-11", "paged-10", "paged-09", "paged-08", "paged-07"]
    );
    let next = first["next"].as_str().unwrap().to_owned();
    assert!(next.starts_with("snap-"), "{next}");
    let cut = first["snapshot"]["id"].clone();

    // After the first page: a record not read yet changes, and a new one is written.
    let res = app
        .write(
            "paged-03",
            &json!({"table": "users", "id": "paged-03", "data": {"balance": 999}}),
        )
        .await;
    assert!(res.status().is_success());
    write_accounts(&app, &["paged-12".to_owned()]).await;

    // The second page through the other gateway, the third through the first: the
    // same cut (the change and the new record unseen), nothing repeated or skipped.
    let res = app
        .client
        .get(list(&other, Some(&next)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let second: Value = res.json().await.unwrap();
    assert_eq!(
        ids(&second),
        ["paged-06", "paged-05", "paged-04", "paged-03", "paged-02"]
    );
    assert_eq!(
        second["records"][3]["data"]["balance"], 100,
        "the value at the cut"
    );
    assert_eq!(second["snapshot"]["id"], cut);
    let res = app
        .client
        .get(list(&app.address, second["next"].as_str()))
        .send()
        .await
        .unwrap();
    let third: Value = res.json().await.unwrap();
    assert_eq!(ids(&third), ["paged-01", "paged-00"]);
    assert!(third["next"].is_null());

    // Past the bound the cut is let go: the page is refused, naming the bound.
    tokio::time::sleep(std::time::Duration::from_millis(5_100)).await;
    let res = app
        .client
        .get(list(&other, Some(&next)))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(res, 410).await;
    assert_eq!(problem["type"], "urn:shardgate:problem:snapshot-expired");
    assert!(
        problem["detail"].as_str().unwrap().contains("5000 ms"),
        "{problem}"
    );

    // A cursor that is not a snapshot list's.
    let res = app
        .client
        .get(list(&app.address, Some("5b315d")))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(res, 400).await;
    assert_eq!(problem["type"], "urn:shardgate:problem:invalid-query");
}

/// A cursor of a snapshot list's next page, as the gateway writes one (hex of its
/// JSON behind `snap-`), naming `shard`.
fn forged_cursor(shard: u32) -> String {
    let json = json!({
        "after": "5b315d",
        "cut": "c0ffee",
        "until_ms": 4_102_444_800_000i64,
        "exports": [[shard, "00000003-0000001B-1"]],
    })
    .to_string();
    let hex: String = json.bytes().map(|b| format!("{b:02x}")).collect();
    format!("snap-{hex}")
}

#[tokio::test]
async fn a_forged_snapshot_cursor_naming_an_unknown_shard_is_the_clients_mistake() {
    let app = spawn_app().await;
    let url = format!(
        "{}/api/read?table=users&limit=5&consistency=snapshot&cursor={}",
        app.address,
        forged_cursor(99)
    );
    let body = assert_problem(app.client.get(url).send().await.unwrap(), 400).await;
    assert!(
        body["detail"].as_str().unwrap().contains("cursor"),
        "{body}"
    );
}

#[tokio::test]
async fn read_many_answers_are_held_to_the_read_budget_duplicates_counted() {
    // A budget of 64 KiB; records of about 20 KiB, and one of 100 KiB.
    let app = spawn_app_with(|s| s.server.max_read_bytes = 64 << 10).await;
    let keys = keys(&app);
    for key in &keys {
        let body = json!({"table": "users", "id": key, "data": {"pad": "x".repeat(20 << 10)}});
        let res = app.write(key, &body).await;
        assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    }
    let big = &keys[1];
    let big_body = json!({"table": "users", "id": "big", "data": {"pad": "y".repeat(100 << 10)}});
    let res = app.write(big, &big_body).await;
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let big_read = json!({"table": "users", "shard_key": big, "id": "big"});
    // Eventual reads go to replicas, which may be a moment behind the acknowledged writes
    // on a busy machine: the budget is what is checked here, so wait until they have them.
    for key in &keys {
        app.read_replica_until(key, "users", key, 1).await;
    }
    app.read_replica_until(big, "users", "big", 1).await;

    for consistency in ["eventual", "strong", "snapshot"] {
        // Three records of 20 KiB: within the budget.
        let res = read_many(
            &app,
            &json!({"reads": reads(&keys), "consistency": consistency}),
        )
        .await;
        assert_eq!(res.status(), 200, "{consistency}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body["records"].as_array().unwrap().len(),
            3,
            "{consistency}"
        );

        // One of them asked four times: 80 KiB in the answer, refused, naming the
        // first read of it.
        let mut asked = reads(&keys[..1]);
        asked.extend(reads(&keys[1..2]).into_iter().cycle().take(4));
        let res = read_many(&app, &json!({"reads": asked, "consistency": consistency})).await;
        let problem = assert_problem(res, 413).await;
        assert_eq!(
            problem["type"], "urn:shardgate:problem:read-budget",
            "{problem}"
        );
        assert_eq!(problem["operation"], 1, "{consistency}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("65536 bytes"),
            "{problem}"
        );

        // A record larger than the budget, asked once, is answered as GET /api/read
        // answers it; asked twice, it is held to the budget.
        let res = read_many(
            &app,
            &json!({"reads": [big_read], "consistency": consistency}),
        )
        .await;
        assert_eq!(res.status(), 200, "{consistency}");
        let res = read_many(
            &app,
            &json!({"reads": [big_read, big_read], "consistency": consistency}),
        )
        .await;
        assert_problem(res, 413).await;
    }
}
