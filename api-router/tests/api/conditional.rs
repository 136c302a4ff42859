//! Conditional requests through the API: a record's `ETag` from whichever server or cache
//! answers, `If-None-Match` on reads (304), `If-Match` on writes and deletes (412 and
//! nothing written), malformed headers, and racing conditional writers.

use std::time::{Duration, Instant};

use reqwest::{RequestBuilder, Response};
use serde_json::{json, Value};
use test_app::{assert_problem, spawn_app, spawn_app_with, TestApp};

fn etag_of(res: &Response) -> String {
    res.headers()
        .get("etag")
        .unwrap_or_else(|| panic!("no ETag on a {} answer", res.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

fn read_request(app: &TestApp, key: &str, id: &str, strong: bool) -> RequestBuilder {
    let consistency = if strong { "&consistency=strong" } else { "" };
    app.client
        .get(app.url(&format!("/api/read?table=users&id={id}{consistency}")))
        .header("x-shard-key", key)
}

fn write_request(app: &TestApp, key: &str, id: &str, data: Value) -> RequestBuilder {
    app.post_json_request(
        "/api/write",
        Some(key),
        &json!({"table": "users", "id": id, "data": data}),
    )
}

fn delete_request(app: &TestApp, key: &str, id: &str) -> RequestBuilder {
    app.client
        .delete(app.url(&format!("/api/delete?table=users&id={id}")))
        .header("x-shard-key", key)
}

/// The record as the primary has it: (status, ETag if any, version, data).
async fn stored(app: &TestApp, key: &str, id: &str) -> (u16, Option<String>, Value, Value) {
    let res = read_request(app, key, id, true).send().await.unwrap();
    let status = res.status().as_u16();
    let etag = res
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = res.json().await.unwrap();
    (
        status,
        etag,
        body["record"]["version"].clone(),
        body["record"]["data"].clone(),
    )
}

/// Writes `data` and returns the answer's ETag and version.
async fn write(app: &TestApp, key: &str, id: &str, data: Value) -> (String, i64) {
    let res = write_request(app, key, id, data).send().await.unwrap();
    assert!(res.status().is_success(), "write: {}", res.status());
    let etag = etag_of(&res);
    let body: Value = res.json().await.unwrap();
    (etag, body["version"].as_i64().unwrap())
}

#[tokio::test]
async fn the_etag_is_the_versions_from_primary_replica_and_cache_and_moves_with_writes() {
    let app = spawn_app_with(|s| {
        s.cluster.cache.enabled = true;
        // Entries live a second: a miss after that is a replica's answer, then hits.
        s.cluster.cache.ttl_secs = 1;
        s.cluster.cache.prefix = format!("sgtest-{}", uuid::Uuid::new_v4().simple());
    })
    .await;
    let (written, version) = write(&app, "e1", "u1", json!({"n": 1})).await;
    let (other, _) = write(&app, "e1", "u2", json!({"n": 1})).await;
    assert_ne!(written, other, "two records never share a tag");

    let primary = read_request(&app, "e1", "u1", true).send().await.unwrap();
    assert_eq!(etag_of(&primary), written);
    let body: Value = primary.json().await.unwrap();
    assert_eq!(body["source"], "primary");

    // Eventual reads: hits of what the write put in the cache; once that expires, a
    // replica's answer, which fills it again.
    let mut seen = std::collections::BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !(seen.contains_key("replica") && seen.contains_key("cache")) {
        assert!(Instant::now() < deadline, "saw only {seen:?}");
        let res = read_request(&app, "e1", "u1", false).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let etag = etag_of(&res);
        let body: Value = res.json().await.unwrap();
        if body["record"]["version"] == json!(version) {
            seen.insert(body["source"].as_str().unwrap().to_owned(), etag);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for (source, etag) in &seen {
        assert_eq!(etag, &written, "the {source}'s tag");
    }

    let (rewritten, _) = write(&app, "e1", "u1", json!({"n": 2})).await;
    assert_ne!(rewritten, written);
    let (_, now, ..) = stored(&app, "e1", "u1").await;
    assert_eq!(now.as_deref(), Some(rewritten.as_str()));
}

#[tokio::test]
async fn if_none_match_answers_304_when_a_tag_matches_and_200_otherwise() {
    let app = spawn_app().await;
    let (old, _) = write(&app, "n1", "u1", json!({"n": 1})).await;
    let (etag, _) = write(&app, "n1", "u1", json!({"n": 2})).await;
    let weak = format!("W/{etag}");
    let listed = format!("\"nope\", {old},{weak}");

    for matching in [etag.as_str(), weak.as_str(), listed.as_str(), "*"] {
        let res = read_request(&app, "n1", "u1", true)
            .header("if-none-match", matching)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 304, "If-None-Match: {matching}");
        assert_eq!(etag_of(&res), etag);
        assert!(res.bytes().await.unwrap().is_empty(), "a 304 has no body");
    }

    let stale = format!("{old}, \"other\"");
    for other in [old.as_str(), stale.as_str(), "\"nope\""] {
        let res = read_request(&app, "n1", "u1", true)
            .header("if-none-match", other)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "If-None-Match: {other}");
        assert_eq!(etag_of(&res), etag);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["record"]["data"], json!({"n": 2}));
    }

    // `*` matches a record that exists; a missing one is still a 404.
    let res = read_request(&app, "n1", "missing", true)
        .header("if-none-match", "*")
        .send()
        .await
        .unwrap();
    assert_problem(res, 404).await;
}

#[tokio::test]
async fn if_match_writes_only_at_the_named_version() {
    let app = spawn_app().await;
    let (first, v1) = write(&app, "m1", "u1", json!({"n": 1})).await;

    let res = write_request(&app, "m1", "u1", json!({"n": 2}))
        .header("if-match", format!("\"other\", {first}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200, "the current tag applies");
    let second = etag_of(&res);
    let body: Value = res.json().await.unwrap();
    assert_ne!(second, first);
    let v2 = body["version"].as_i64().unwrap();
    assert!(v2 > v1);
    assert_eq!(body["created"], false);
    assert_eq!(
        stored(&app, "m1", "u1").await,
        (200, Some(second.clone()), json!(v2), json!({"n": 2}))
    );

    // A stale tag, and the current one sent weak (If-Match compares strongly): refused,
    // naming the current version and tag; the record is as it was.
    for stale in [first.clone(), format!("W/{second}")] {
        let res = write_request(&app, "m1", "u1", json!({"n": 3}))
            .header("if-match", &stale)
            .send()
            .await
            .unwrap();
        assert_eq!(etag_of(&res), second);
        let problem = assert_problem(res, 412).await;
        assert_eq!(problem["type"], "urn:shardgate:problem:precondition-failed");
        assert_eq!(problem["header"], "if-match");
        assert_eq!(problem["current_version"], json!(v2));
        assert_eq!(problem["current_etag"], json!(second));
        assert_eq!(
            stored(&app, "m1", "u1").await,
            (200, Some(second.clone()), json!(v2), json!({"n": 2})),
            "If-Match: {stale}"
        );
    }

    // `*`: any version of a record that exists.
    let res = write_request(&app, "m1", "u1", json!({"n": 4}))
        .header("if-match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let fourth = etag_of(&res);
    assert_eq!(stored(&app, "m1", "u1").await.3, json!({"n": 4}));

    // A missing record: refused whatever the tag, never created.
    for tag in ["*", fourth.as_str()] {
        let res = write_request(&app, "m1", "absent", json!({"n": 1}))
            .header("if-match", tag)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(res, 412).await;
        assert_eq!(problem["current_version"], json!(0));
        assert!(problem.get("current_etag").is_none());
        assert_eq!(stored(&app, "m1", "absent").await.0, 404);
    }

    // Deletes: a stale tag is refused and keeps the record; the current one deletes it;
    // then `*` finds nothing.
    let res = delete_request(&app, "m1", "u1")
        .header("if-match", &second)
        .send()
        .await
        .unwrap();
    let problem = assert_problem(res, 412).await;
    assert_eq!(problem["current_etag"], json!(fourth));
    assert_eq!(stored(&app, "m1", "u1").await.3, json!({"n": 4}));
    let res = delete_request(&app, "m1", "u1")
        .header("if-match", &fourth)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(stored(&app, "m1", "u1").await.0, 404);
    let res = delete_request(&app, "m1", "u1")
        .header("if-match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(assert_problem(res, 412).await["current_version"], json!(0));
}

#[tokio::test]
async fn malformed_or_misplaced_conditional_headers_are_400_and_change_nothing() {
    let app = spawn_app().await;
    let (etag, version) = write(&app, "b1", "u1", json!({"n": 1})).await;
    let unchanged = (200, Some(etag.clone()), json!(version), json!({"n": 1}));

    let cases: Vec<(&str, RequestBuilder, &str)> = vec![
        (
            "if-match",
            write_request(&app, "b1", "u1", json!({"n": 2})).header("if-match", "abc"),
            "if-match",
        ),
        (
            "if-match",
            write_request(&app, "b1", "u1", json!({"n": 2}))
                .header("if-match", format!("*, {etag}")),
            "if-match",
        ),
        (
            "if-match",
            write_request(&app, "b1", "u1", json!({"n": 2})).header("if-match", "\"a b\""),
            "if-match",
        ),
        (
            "if-match",
            delete_request(&app, "b1", "u1").header("if-match", "W/x"),
            "if-match",
        ),
        (
            "if-match",
            delete_request(&app, "b1", "u1").header("if-match", ""),
            "if-match",
        ),
        // A write does not take If-None-Match, nor If-Match with an Idempotency-Key.
        (
            "if-none-match",
            write_request(&app, "b1", "u1", json!({"n": 2})).header("if-none-match", "*"),
            "if-none-match",
        ),
        (
            "if-none-match",
            delete_request(&app, "b1", "u1").header("if-none-match", etag.as_str()),
            "if-none-match",
        ),
        (
            "if-match",
            write_request(&app, "b1", "u1", json!({"n": 2}))
                .header("if-match", etag.as_str())
                .header("idempotency-key", "k-1"),
            "Idempotency-Key",
        ),
        (
            "if-none-match",
            read_request(&app, "b1", "u1", true).header("if-none-match", "\"open"),
            "if-none-match",
        ),
        // Bulk writes and transactions take no conditional header (a transaction's
        // operations carry `if_version`).
        (
            "if-match",
            app.post_json_request(
                "/api/bulk-write",
                Some("b1"),
                &json!({"table": "users", "records": [{"id": "u1", "data": {"n": 2}}]}),
            )
            .header("if-match", etag.as_str()),
            "if_version",
        ),
        (
            "if-none-match",
            app.post_json_request(
                "/api/transaction",
                None,
                &json!({"operations": [{"table": "users", "shard_key": "b1", "id": "u1", "data": {"n": 2}}]}),
            )
            .header("if-none-match", "*"),
            "if_version",
        ),
    ];
    for (i, (header, req, named)) in cases.into_iter().enumerate() {
        let problem = assert_problem(req.send().await.unwrap(), 400).await;
        assert_eq!(problem["header"], header, "case {i}: {problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(named), "case {i}: {detail}");
        assert_eq!(stored(&app, "b1", "u1").await, unchanged, "case {i}");
    }
}

#[tokio::test]
async fn of_writers_racing_with_the_same_if_match_exactly_one_wins() {
    let app = spawn_app().await;
    for round in 0..3 {
        let (etag, _) = write(&app, "r1", "u1", json!({"round": round, "writer": -1})).await;
        let writers = (0..16).map(|w| {
            write_request(&app, "r1", "u1", json!({"round": round, "writer": w}))
                .header("if-match", &etag)
                .send()
        });
        let answers = futures_util::future::join_all(writers).await;
        let mut won = Vec::new();
        let mut refused = 0;
        for (w, res) in answers.into_iter().enumerate() {
            let res = res.unwrap();
            match res.status().as_u16() {
                200 => won.push((w, etag_of(&res))),
                412 => refused += 1,
                other => panic!("writer {w}: {other}"),
            }
        }
        assert_eq!((won.len(), refused), (1, 15), "round {round}");
        let (w, new_tag) = &won[0];
        let (status, now, _, data) = stored(&app, "r1", "u1").await;
        assert_eq!(status, 200);
        assert_eq!(now.as_ref(), Some(new_tag));
        assert_eq!(data, json!({"round": round, "writer": w}));
    }
}

/// `POST /api/write` with `if_version` in its body: the body's form of `If-Match`.
fn write_at(app: &TestApp, key: &str, id: &str, data: Value, if_version: Value) -> RequestBuilder {
    app.post_json_request(
        "/api/write",
        Some(key),
        &json!({"table": "users", "id": id, "data": data, "if_version": if_version}),
    )
}

#[tokio::test]
async fn a_single_writes_if_version_is_checked_as_if_match_is() {
    let app = spawn_app().await;
    let (_, version) = write(&app, "iv1", "v1", json!({"n": 1})).await;

    // At the version it names: replaced, one version on.
    let res = write_at(&app, "iv1", "v1", json!({"n": 2}), json!(version))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["version"].as_i64(), Some(version + 1));

    // A version it has moved on from: 412 naming the current one, nothing written.
    let res = write_at(&app, "iv1", "v1", json!({"n": 3}), json!(version))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 412);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(
        problem["current_version"].as_i64(),
        Some(version + 1),
        "{problem}"
    );
    let (_, _, stored_version, data) = stored(&app, "iv1", "v1").await;
    assert_eq!(stored_version.as_i64(), Some(version + 1));
    assert_eq!(data, json!({"n": 2}));

    // A record that does not exist is never created by a conditional write.
    let res = write_at(&app, "iv1", "absent", json!({"n": 1}), json!(1))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 412);
    assert_eq!(stored(&app, "iv1", "absent").await.0, 404);

    // Refused before anything is written, naming the problem.
    for (bad, status, names) in [
        (json!(0), 422, "transaction"),
        (json!(-1), 422, "if_version"),
        (json!("7"), 422, "if_version"),
        (json!(1.5), 422, "if_version"),
    ] {
        let res = write_at(&app, "iv1", "v1", json!({"n": 9}), bad.clone())
            .send()
            .await
            .unwrap();
        let problem = assert_problem(res, status).await;
        assert!(
            problem["detail"].as_str().unwrap().contains(names),
            "{bad}: {problem}"
        );
    }
    let with_if_match = write_at(&app, "iv1", "v1", json!({"n": 9}), json!(version + 1))
        .header("if-match", "*")
        .send()
        .await
        .unwrap();
    let problem = assert_problem(with_if_match, 400).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("if_version"),
        "{problem}"
    );
    let with_key = write_at(&app, "iv1", "v1", json!({"n": 9}), json!(version + 1))
        .header("idempotency-key", "iv-key-1")
        .send()
        .await
        .unwrap();
    let problem = assert_problem(with_key, 422).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{problem}"
    );
    let (_, _, stored_version, data) = stored(&app, "iv1", "v1").await;
    assert_eq!(
        stored_version.as_i64(),
        Some(version + 1),
        "nothing written"
    );
    assert_eq!(data, json!({"n": 2}));
}

/// The `etag` the record `id` carries in a list of records (a keyed list, a fan-out, a
/// query) or a read-many's found records.
fn listed_tag(records: &Value, id: &str) -> String {
    let found = records
        .as_array()
        .expect("records")
        .iter()
        .find(|r| r["id"] == id || r["record"]["id"] == id)
        .unwrap_or_else(|| panic!("{id} not listed: {records}"));
    found["etag"]
        .as_str()
        .unwrap_or_else(|| panic!("no etag: {found}"))
        .to_owned()
}

async fn body_of(res: Response, what: &str) -> Value {
    assert_eq!(res.status().as_u16(), 200, "{what}");
    res.json().await.unwrap()
}

#[tokio::test]
async fn every_record_a_list_query_or_read_many_answers_carries_its_etag_for_if_match() {
    let app = spawn_app().await;
    write(&app, "t1", "u1", json!({"n": 1})).await;
    let (tag, _) = write(&app, "t1", "u1", json!({"n": 2})).await;
    let (other, _) = write(&app, "t1", "u2", json!({"n": 3})).await;
    write(&app, "t2", "u3", json!({"n": 4})).await;
    assert_eq!(
        stored(&app, "t1", "u1").await.1.as_deref(),
        Some(tag.as_str())
    );

    let keyed = app
        .client
        .get(app.url("/api/read?table=users&consistency=strong"))
        .header("x-shard-key", "t1")
        .send()
        .await
        .unwrap();
    let keyed = body_of(keyed, "keyed list").await;
    let fan_out = app
        .client
        .get(app.url("/api/read?table=users&consistency=strong"))
        .send()
        .await
        .unwrap();
    let fan_out = body_of(fan_out, "fan-out").await;
    let snapshot = app
        .client
        .get(app.url("/api/read?table=users&consistency=snapshot"))
        .send()
        .await
        .unwrap();
    let snapshot = body_of(snapshot, "fan-out at one cut").await;
    let query = json!({"table": "users", "consistency": "strong",
        "filter": [{"field": "n", "op": "gte", "value": 0}], "fields": ["n"]});
    let query = body_of(app.post_json("/api/query", None, &query).await, "query").await;
    let reads = json!({"consistency": "strong", "reads": [
        {"table": "users", "shard_key": "t1", "id": "u2"},
        {"table": "users", "shard_key": "t1", "id": "u1"}]});
    let many = body_of(
        app.post_json("/api/read-many", None, &reads).await,
        "read-many",
    )
    .await;

    for (what, answer) in [
        ("keyed list", &keyed),
        ("fan-out", &fan_out),
        ("snapshot", &snapshot),
        ("query", &query),
        ("read-many", &many),
    ] {
        assert_eq!(listed_tag(&answer["records"], "u1"), tag, "{what}");
        assert_eq!(listed_tag(&answer["records"], "u2"), other, "{what}");
    }

    // The listed tag is a condition: it writes once, then is stale (412, nothing written).
    let listed = listed_tag(&query["records"], "u1");
    let res = write_request(&app, "t1", "u1", json!({"n": 5}))
        .header("if-match", &listed)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200, "the listed tag applies");
    let res = write_request(&app, "t1", "u1", json!({"n": 6}))
        .header("if-match", &listed)
        .send()
        .await
        .unwrap();
    assert_problem(res, 412).await;
    assert_eq!(stored(&app, "t1", "u1").await.3, json!({"n": 5}));
}
