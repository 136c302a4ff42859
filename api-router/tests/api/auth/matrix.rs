//! Each caller (no key, an unknown key, a revoked key, a key of each scope, a key of
//! all four) against each endpoint class: 2xx, 401 or 403, every cell asserted.

use reqwest::Method;
use serde_json::{json, Value};
use test_app::{assert_problem, spawn_app, TestApp};

use super::{await_key, create_key, revoke_key};

/// One endpoint as a class of the matrix: which scope it needs (None: open).
struct Call {
    class: &'static str,
    scope: Option<&'static str>,
    method: Method,
    path: String,
    shard_key: Option<&'static str>,
    body: Option<Value>,
}

fn calls(delete_id: &str) -> Vec<Call> {
    let call = |class, scope, method, path: &str, shard_key, body| Call {
        class,
        scope,
        method,
        path: path.to_owned(),
        shard_key,
        body,
    };
    let get = Method::GET;
    vec![
        call(
            "point read",
            Some("read"),
            get.clone(),
            "/api/read?table=users&id=m1",
            Some("m"),
            None,
        ),
        call(
            "keyed list",
            Some("read"),
            get.clone(),
            "/api/read?table=users",
            Some("m"),
            None,
        ),
        call(
            "fan-out list",
            Some("read"),
            get.clone(),
            "/api/read?table=users",
            None,
            None,
        ),
        call(
            "write",
            Some("write"),
            Method::POST,
            "/api/write",
            Some("m"),
            Some(json!({"table": "users", "id": "m1", "data": {"v": 1}})),
        ),
        call(
            "bulk write",
            Some("write"),
            Method::POST,
            "/api/bulk-write",
            None,
            Some(
                json!({"table": "users", "records": [{"shard_key": "m", "id": "m2", "data": {}}]}),
            ),
        ),
        call(
            "delete",
            Some("write"),
            Method::DELETE,
            &format!("/api/delete?table=users&id={delete_id}"),
            Some("m"),
            None,
        ),
        call(
            "shard map",
            Some("admin"),
            get.clone(),
            "/api/shards",
            None,
            None,
        ),
        call(
            "locate",
            Some("admin"),
            get.clone(),
            "/api/shards/locate?key=m",
            None,
            None,
        ),
        call(
            "prometheus",
            Some("metrics"),
            get.clone(),
            "/metrics",
            None,
            None,
        ),
        call(
            "analytics metrics",
            Some("metrics"),
            get.clone(),
            "/api/analytics/metrics",
            None,
            None,
        ),
        call(
            "analytics errors",
            Some("metrics"),
            get.clone(),
            "/api/analytics/errors",
            None,
            None,
        ),
        call(
            "liveness",
            None,
            get.clone(),
            "/api/health/live",
            None,
            None,
        ),
        call("health", None, get.clone(), "/api/health", None, None),
        call("dashboard", None, get, "/dashboard", None, None),
    ]
}

async fn send(app: &TestApp, call: &Call, key: Option<&str>) -> reqwest::Response {
    let mut req = app.client.request(call.method.clone(), app.url(&call.path));
    if let Some(k) = call.shard_key {
        req = req.header("x-shard-key", k);
    }
    if let Some(body) = &call.body {
        req = req.json(body);
    }
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.expect("send")
}

#[tokio::test]
async fn each_scope_against_each_endpoint_class_answers_2xx_401_or_403() {
    let app = spawn_app().await;
    let all = create_key(&app, "all", "read,write,admin,metrics", None).await;
    let mut keys = vec![];
    for scope in ["read", "write", "admin", "metrics"] {
        keys.push((scope, Some(create_key(&app, scope, scope, None).await)));
    }
    let revoked = create_key(&app, "gone", "read,write,admin,metrics", None).await;
    revoke_key(&app, "gone").await;
    await_key(&app, &all).await;
    let unknown = format!("sg_{}", "0".repeat(64));
    let mut callers: Vec<(&str, Option<String>)> = vec![
        ("no key", None),
        ("unknown key", Some(unknown)),
        ("revoked key", Some(revoked)),
        ("all scopes", Some(all.clone())),
    ];
    callers.extend(keys);

    let mut mismatches = Vec::new();
    let mut refusals = Vec::new();
    for (who, key) in &callers {
        // Every caller's delete has its own record, and the point read's record exists
        // whoever wrote it or did not: both written with the all-scopes key.
        let delete_id = format!("del-{}", who.replace(' ', "-"));
        for id in [delete_id.as_str(), "m1"] {
            let seed = json!({"table": "users", "id": id, "data": {}});
            let res = app
                .client
                .post(app.url("/api/write"))
                .bearer_auth(&all)
                .header("x-shard-key", "m")
                .json(&seed)
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success(), "seed write: {}", res.status());
        }
        for call in calls(&delete_id) {
            let has_scope = match (call.scope, *who) {
                (None, _) => true,
                (Some(_), "all scopes") => true,
                (Some(s), who) => s == who,
            };
            let expected = match (call.scope, key.is_some() && !who.ends_with(" key")) {
                (None, _) => 200,
                (Some(_), false) => 401,
                (Some(_), true) if has_scope => 200,
                (Some(_), true) => 403,
            };
            let res = send(&app, &call, key.as_deref()).await;
            let status = res.status().as_u16();
            let ok = match expected {
                // Health is open to every caller; under load it may report the cluster
                // unhealthy (503, a replica banned for a moment), which is its answer,
                // not a refusal.
                200 if call.class == "health" => res.status().is_success() || status == 503,
                200 => res.status().is_success(),
                other => status == other,
            };
            if !ok {
                mismatches.push(format!(
                    "{who} → {}: {status}, expected {expected}",
                    call.class
                ));
                continue;
            }
            if expected != 200 {
                let problem = assert_problem(res, expected).await;
                refusals.push((*who, call.class, problem));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} cells wrong:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );

    // 401s never say whether a key exists: an unknown and a revoked key read alike.
    let detail = |who: &str| -> Vec<String> {
        refusals
            .iter()
            .filter(|(w, _, _)| *w == who)
            .map(|(_, _, p)| {
                assert_eq!(p["type"], "urn:shardgate:problem:unauthenticated");
                p["detail"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    assert_eq!(detail("unknown key"), detail("revoked key"));
    let forbidden = refusals
        .iter()
        .find(|(w, c, _)| *w == "read" && *c == "write")
        .unwrap();
    assert_eq!(forbidden.2["type"], "urn:shardgate:problem:forbidden");
    assert!(
        forbidden.2["detail"]
            .as_str()
            .unwrap()
            .contains("`write` scope"),
        "{}",
        forbidden.2
    );
    // 11 scoped classes: 401 for the 3 callers without a valid key; 403 for each
    // single-scope key outside its own classes (read 3, write 3, admin 2, metrics 3).
    assert_eq!(refusals.len(), 3 * 11 + 8 + 8 + 9 + 8, "the refused cells");
}

#[tokio::test]
async fn a_key_limited_to_tables_uses_only_those_and_writes_nothing_elsewhere() {
    let app = spawn_app().await;
    let all = create_key(&app, "all", "read,write", None).await;
    let orders = create_key(&app, "orders-only", "read,write", Some(&["orders"])).await;
    await_key(&app, &orders).await;
    let write = |key: &str, table: &str| {
        app.client
            .post(app.url("/api/write"))
            .bearer_auth(key)
            .header("x-shard-key", "t")
            .json(&json!({"table": table, "id": "t1", "data": {}}))
            .send()
    };
    assert_eq!(
        write(&orders, "orders").await.unwrap().status().as_u16(),
        201
    );
    let refused = assert_problem(write(&orders, "users").await.unwrap(), 403).await;
    assert!(
        refused["detail"].as_str().unwrap().contains("\"users\""),
        "{refused}"
    );
    let bulk = app
        .client
        .post(app.url("/api/bulk-write"))
        .bearer_auth(&orders)
        .json(&json!({"table": "users", "records": [{"shard_key": "t", "id": "t2", "data": {}}]}))
        .send()
        .await
        .unwrap();
    assert_problem(bulk, 403).await;
    let get = |path: &str, key: &str, shard_key: Option<&str>| {
        let mut req = app.client.get(app.url(path)).bearer_auth(key);
        if let Some(k) = shard_key {
            req = req.header("x-shard-key", k);
        }
        req.send()
    };
    for (path, shard_key) in [
        ("/api/read?table=users&id=t1", Some("t")),
        ("/api/read?table=users", Some("t")),
        ("/api/read?table=users", None),
    ] {
        assert_problem(get(path, &orders, shard_key).await.unwrap(), 403).await;
    }
    // Nothing was written to users by the refused requests.
    for id in ["t1", "t2"] {
        let path = format!("/api/read?table=users&id={id}&consistency=strong");
        assert_problem(get(&path, &all, Some("t")).await.unwrap(), 404).await;
    }
}
