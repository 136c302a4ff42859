//! Reads without a shard key fan out to every shard; filters and cursors work on
//! keyed and fan-out lists alike.

use std::collections::HashSet;

use serde_json::{json, Value};
use test_app::{assert_problem, spawn_app};

#[tokio::test]
async fn fan_out_merges_every_shard_newest_first_and_pages_without_gaps_or_duplicates() {
    let app = spawn_app().await;
    let records: Vec<Value> = (0..90)
        .map(|i| json!({"shard_key": format!("fan_{i}"), "id": format!("r{i}"), "data": {"i": i, "grade": if i % 3 == 0 {"A"} else {"B"}}}))
        .collect();
    assert_eq!(
        app.bulk(None, &json!({"table": "users", "records": records}))
            .await
            .status()
            .as_u16(),
        200
    );

    let mut seen = Vec::new();
    let mut shards_seen = HashSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = "/api/read?table=users&limit=25&consistency=strong".to_owned();
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let res = app.client.get(app.url(&url)).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["partial"], false);
        assert_eq!(body["shards"].as_array().unwrap().len(), 3);
        for r in body["records"].as_array().unwrap() {
            seen.push((
                r["updated_at"].as_str().unwrap().to_owned(),
                r["id"].as_str().unwrap().to_owned(),
            ));
            shards_seen.insert(r["shard"].as_u64().unwrap());
        }
        pages += 1;
        match body["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }

    assert_eq!(pages, 4, "90 records in pages of 25");
    assert_eq!(seen.len(), 90, "no gaps");
    let unique: HashSet<_> = seen.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(unique.len(), 90, "no duplicates");
    assert!(
        seen.windows(2).all(|w| w[0].0 >= w[1].0),
        "newest first across shards"
    );
    assert_eq!(shards_seen.len(), 3);
}

#[tokio::test]
async fn where_filters_keyed_and_fan_out_lists() {
    let app = spawn_app().await;
    for i in 0..12 {
        let key = if i < 6 {
            "student".to_owned()
        } else {
            format!("other_{i}")
        };
        app.write(&key, &json!({"table": "users", "id": format!("s{i}"), "data": {"grade": if i % 2 == 0 {"A"} else {"B"}, "n": i}})).await;
    }

    let keyed: Value = app
        .get(
            "student",
            "/api/read?table=users&consistency=strong&where=%7B%22grade%22%3A%22A%22%7D",
        )
        .await
        .json()
        .await
        .unwrap();
    let all: Value = app
        .get_json(
            "/api/read?table=users&consistency=strong&limit=100&where=%7B%22grade%22%3A%22A%22%7D",
        )
        .await;

    assert_eq!(keyed["count"], 3, "s0, s2, s4 for this key");
    assert!(keyed["records"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["data"]["grade"] == "A"));
    assert_eq!(all["count"], 6);
    let bad = app
        .get("student", "/api/read?table=users&where=%5B1%5D")
        .await;
    assert!(assert_problem(bad, 400).await["detail"]
        .as_str()
        .unwrap()
        .contains("`where` must be a JSON object"));
    let bad_cursor = app
        .client
        .get(app.url("/api/read?table=users&cursor=abc"))
        .send()
        .await
        .unwrap();
    assert!(assert_problem(bad_cursor, 400).await["detail"]
        .as_str()
        .unwrap()
        .contains("cursor"));
    let no_key_point = app
        .client
        .get(app.url("/api/read?table=users&id=s1"))
        .send()
        .await
        .unwrap();
    assert_problem(no_key_point, 400).await;
}

#[tokio::test]
async fn keyed_lists_page_with_cursors() {
    let app = spawn_app().await;
    for i in 0..7 {
        app.write(
            "pager",
            &json!({"table": "events", "id": format!("p{i}"), "data": {}}),
        )
        .await;
    }
    let first: Value = app
        .get("pager", "/api/read?table=events&limit=4&consistency=strong")
        .await
        .json()
        .await
        .unwrap();
    let next = first["next"].as_str().unwrap();
    let second: Value = app
        .get(
            "pager",
            &format!("/api/read?table=events&limit=4&consistency=strong&cursor={next}"),
        )
        .await
        .json()
        .await
        .unwrap();

    let ids = |b: &Value| -> Vec<String> {
        b["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&first), ["p6", "p5", "p4", "p3"]);
    assert_eq!(ids(&second), ["p2", "p1", "p0"]);
    assert!(second["next"].is_null(), "last page");
}
