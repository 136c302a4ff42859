//! `shard-admin query` as a user runs it, on databases of the test's own, against an
//! oracle over the same records: `--all` gives exactly the records that match, in the
//! query's order; one page at a time, following `next`, gives the same; `--fields`
//! keeps only those fields; `--count exact` counts them; bad arguments are refused
//! naming the fault, having read nothing.

mod common;

use serde_json::{json, Value};

use common::scratch::Scratch;
use common::{assert_refused, text};

const CITIES: [&str; 3] = ["London", "Paris", "Rome"];

/// 240 users across the shards: ages 0..60, three cities, scores with many ties.
fn users() -> Vec<(String, String, Value)> {
    (0..240)
        .map(|i| {
            let data = json!({
                "name": format!("n{i}"),
                "age": (i * 7) % 60,
                "address": {"city": CITIES[i % 3]},
                "score": (i * 13) % 20,
            });
            (format!("u{i:03}"), format!("r{i:03}"), data)
        })
        .collect()
}

/// The oracle: users aged 40 or more in London or Paris, by score descending, ties by
/// shard key then id; as (shard key, id).
fn expected(users: &[(String, String, Value)]) -> Vec<(String, String)> {
    let mut hits: Vec<_> = users
        .iter()
        .filter(|(_, _, d)| {
            d["age"].as_i64().unwrap() >= 40 && d["address"]["city"] != json!("Rome")
        })
        .collect();
    hits.sort_by(|a, b| {
        let by_score = b.2["score"].as_i64().cmp(&a.2["score"].as_i64());
        by_score.then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1)))
    });
    assert!(hits.len() > 40, "the oracle spans several pages");
    hits.into_iter()
        .map(|(k, i, _)| (k.clone(), i.clone()))
        .collect()
}

const QUERY: [&str; 8] = [
    "query",
    "--table",
    "users",
    "--where",
    "age gte 40",
    "--where",
    r#"address.city in ["London", "Paris"]"#,
    "--sort",
];

fn args<'a>(more: &[&'a str]) -> Vec<&'a str> {
    let mut all: Vec<&str> = QUERY.to_vec();
    all.push("score:desc");
    all.extend_from_slice(more);
    all
}

fn key_of(record: &Value) -> (String, String) {
    let r = &record["record"];
    (
        r["shard_key"].as_str().unwrap().to_owned(),
        r["id"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn query_answers_as_the_oracle_whole_and_page_by_page_and_refuses_bad_arguments() {
    let users = users();
    let want = expected(&users);
    let scratch = Scratch::holding(&users);

    // --all: one JSON line per record, exactly the oracle's, in its order.
    let out = scratch.output(&args(&["--all", "--fields", "name,score"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<_> = lines.iter().map(key_of).collect();
    assert_eq!(got, want);
    let shards: std::collections::BTreeSet<_> =
        lines.iter().map(|l| l["shard"].as_u64().unwrap()).collect();
    assert!(shards.len() > 1, "records came from several shards");
    for line in &lines {
        let data = &line["record"]["data"];
        let names: Vec<&String> = data.as_object().unwrap().keys().collect();
        assert_eq!(names, ["name", "score"], "only the fields asked: {data}");
    }
    assert!(text(&out.stderr).contains(&format!("{} records of table users", want.len())));

    // Page by page: 9 at a time, following `next`, with the total counted.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut more = vec!["--limit", "9", "--count", "exact"];
        if let Some(c) = &cursor {
            more.extend(["--cursor", c.as_str()]);
        }
        let out = scratch.output(&args(&more));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let page: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(page["total"].as_u64(), Some(want.len() as u64));
        let records = page["records"].as_array().unwrap();
        assert_eq!(page["count"].as_u64(), Some(records.len() as u64));
        assert!(records.len() <= 9);
        paged.extend(records.iter().map(key_of));
        pages += 1;
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 100, "the cursor never ends");
    }
    assert_eq!(paged, want, "pages in order, none twice, none missed");
    assert_eq!(pages, want.len().div_ceil(9).max(1));

    // Refused, naming the fault.
    let refusals: [(&[&str], &str); 6] = [
        (&["query", "--table", "nope"], "nope"),
        (
            &["query", "--table", "users", "--where", "age between 4"],
            "unknown operator",
        ),
        (
            &["query", "--table", "users", "--where", "age"],
            "FIELD OP VALUE",
        ),
        (
            &["query", "--table", "users", "--limit", "50000"],
            "limit is 50000",
        ),
        (
            &["query", "--table", "users", "--consistency", "someday"],
            "someday",
        ),
        (
            &["query", "--table", "users", "--consistency", "snapshot"],
            "POST /api/query",
        ),
    ];
    for (words, names) in refusals {
        let out = scratch.output(words);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{words:?}: {stderr}");
        assert!(stderr.contains(names), "{words:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{words:?} printed records");
        assert_refused(words, &stderr);
    }
}
