//! `POST /api/query` against an oracle: a few hundred records of varied JSON (numbers,
//! strings, nested members, missing fields, mixed types) on three shards, and every
//! answer compared with what the oracle, computed here from the same records, says:
//! every operator, sorts on one and several fields with ties, every page of each
//! (no record twice, none missed, also while records are written), counts, fields; then
//! every kind of bad input.

use std::cmp::Ordering;
use std::collections::HashSet;

use serde_json::{json, Map, Value};
use test_app::{assert_problem, spawn_app_with, TestApp};

pub(crate) const TABLE: &str = "query_people";
const RECORDS: usize = 320;

/// A small deterministic generator, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// The records: (shard key, id, data).
fn records() -> Vec<(String, String, Value)> {
    let names = [
        "alice",
        "Bob",
        "bob",
        "Émile",
        "zoë",
        "Zed",
        "ann",
        "Ann-Marie",
        "",
    ];
    let cities = ["London", "Paris", "Berlin", "Lyon"];
    let tags = ["red", "green", "blue"];
    let mut g = Lcg(55);
    (0..RECORDS)
        .map(|i| {
            let mut d = Map::new();
            match g.next(10) {
                0 => {}
                1 => {
                    d.insert("age".into(), Value::Null);
                }
                2 => {
                    d.insert("age".into(), json!(format!("{}", g.next(90))));
                }
                3 => {
                    d.insert("age".into(), json!(g.next(900) as f64 / 10.0));
                }
                _ => {
                    d.insert("age".into(), json!(g.next(90)));
                }
            }
            if g.next(8) != 0 {
                d.insert(
                    "name".into(),
                    json!(names[g.next(names.len() as u64) as usize]),
                );
            }
            d.insert("score".into(), json!(g.next(6)));
            if g.next(5) != 0 {
                let mut address = Map::new();
                if g.next(6) != 0 {
                    address.insert(
                        "city".into(),
                        json!(cities[g.next(cities.len() as u64) as usize]),
                    );
                }
                address.insert("zip".into(), json!(g.next(3) * 1000));
                d.insert("address".into(), Value::Object(address));
            }
            let tag_list: Vec<Value> = (0..g.next(3))
                .map(|_| json!(tags[g.next(3) as usize]))
                .collect();
            d.insert("tags".into(), Value::Array(tag_list));
            if g.next(3) != 0 {
                d.insert("active".into(), json!(g.next(2) == 0));
            }
            let mixed = match g.next(8) {
                0 => None,
                1 => Some(Value::Null),
                2 => Some(json!(g.next(4) == 0)),
                3 => Some(json!(g.next(20) as i64 - 10)),
                4 => Some(json!(["x", "y", "z"][g.next(3) as usize])),
                5 => Some(json!([g.next(3), g.next(3)])),
                6 => Some(json!({"k": g.next(3)})),
                _ => Some(json!(g.next(5) as f64 + 0.5)),
            };
            if let Some(m) = mixed {
                d.insert("mixed".into(), m);
            }
            (
                format!("qk{}", g.next(120)),
                format!("r{i:03}"),
                Value::Object(d),
            )
        })
        .collect()
}

// ------------------------------------------------------------------------------------
// The oracle: the documented semantics, written out again here from the doc.

pub(crate) fn at<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(doc, |v, s| match v {
        Value::Object(m) => m.get(s),
        Value::Array(a) => {
            let i: i64 = s.parse().ok()?;
            let i = if i < 0 { a.len() as i64 + i } else { i };
            a.get(usize::try_from(i).ok()?)
        }
        _ => None,
    })
}

fn num(v: &Value) -> f64 {
    v.as_f64().expect("a number")
}

pub(crate) fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => num(a) == num(b),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, a)| y.get(k).is_some_and(|b| same(a, b)))
        }
        _ => a == b,
    }
}

fn contained(have: &Value, want: &Value, top: bool) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| h.get(k).is_some_and(|hv| contained(hv, wv, false))),
        (Value::Array(h), Value::Array(w)) => w.iter().all(|wv| {
            h.iter().any(|hv| {
                let nested = |v: &Value| v.is_array() || v.is_object();
                if nested(hv) || nested(wv) {
                    hv.is_array() == wv.is_array()
                        && hv.is_object() == wv.is_object()
                        && contained(hv, wv, false)
                } else {
                    same(hv, wv)
                }
            })
        }),
        (Value::Array(h), w) if top && !w.is_object() && !w.is_array() => {
            h.iter().any(|hv| same(hv, w))
        }
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => false,
        _ => same(have, want),
    }
}

fn matches(doc: &Value, c: &Value) -> bool {
    let v = at(doc, c["field"].as_str().unwrap());
    let x = &c["value"];
    match c["op"].as_str().unwrap() {
        "eq" => v.is_some_and(|v| same(v, x)),
        "ne" => !v.is_some_and(|v| same(v, x)),
        "in" => v.is_some_and(|v| x.as_array().unwrap().iter().any(|i| same(v, i))),
        "nin" => !v.is_some_and(|v| x.as_array().unwrap().iter().any(|i| same(v, i))),
        "exists" => v.is_some() == x.as_bool().unwrap_or(true),
        "prefix" => matches!(v, Some(Value::String(s)) if s.starts_with(x.as_str().unwrap())),
        "contains" => v.is_some_and(|v| contained(v, x, true)),
        op => {
            let o = match (v, x) {
                (Some(Value::Number(_)), Value::Number(_)) => {
                    num(v.unwrap()).partial_cmp(&num(x)).unwrap()
                }
                (Some(Value::String(a)), Value::String(b)) => a.as_bytes().cmp(b.as_bytes()),
                _ => return false,
            };
            match op {
                "gt" => o.is_gt(),
                "gte" => o.is_ge(),
                "lt" => o.is_lt(),
                "lte" => o.is_le(),
                _ => unreachable!("{op}"),
            }
        }
    }
}

/// `jsonb`'s text of a value (for the arrays and objects of these records): members
/// by length then bytes, `, ` and `: ` between.
fn jsonb_text(v: &Value) -> String {
    match v {
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(jsonb_text).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)));
            let members: Vec<String> = keys
                .iter()
                .map(|k| format!("{}: {}", json!(k), jsonb_text(&m[*k])))
                .collect();
            format!("{{{}}}", members.join(", "))
        }
        other => other.to_string(),
    }
}

/// The documented order of one value: missing, null, string, number, boolean, array,
/// object; numbers by value, strings by bytes, the rest by their `jsonb` text.
fn order_of(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let rank = |v: Option<&Value>| match v {
        None => 0,
        Some(Value::Null) => 1,
        Some(Value::String(_)) => 2,
        Some(Value::Number(_)) => 3,
        Some(Value::Bool(_)) => 4,
        Some(Value::Array(_)) => 5,
        Some(Value::Object(_)) => 6,
    };
    rank(a).cmp(&rank(b)).then_with(|| match (a, b) {
        (Some(Value::Number(_)), Some(Value::Number(_))) => {
            num(a.unwrap()).partial_cmp(&num(b.unwrap())).unwrap()
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.as_bytes().cmp(y.as_bytes()),
        (Some(x @ Value::Bool(_)), Some(y)) => x.to_string().cmp(&y.to_string()),
        (Some(x), Some(y)) => jsonb_text(x).as_bytes().cmp(jsonb_text(y).as_bytes()),
        _ => Ordering::Equal,
    })
}

/// The oracle's answer: the (shard key, id) of every matching record, in order.
pub(crate) fn oracle(
    all: &[(String, String, Value)],
    filter: &[Value],
    sort: &[Value],
) -> Vec<(String, String)> {
    let mut rows: Vec<&(String, String, Value)> = all
        .iter()
        .filter(|(_, _, d)| filter.iter().all(|c| matches(d, c)))
        .collect();
    rows.sort_by(|a, b| {
        sort.iter()
            .map(|s| {
                let f = s["field"].as_str().unwrap();
                let o = order_of(at(&a.2, f), at(&b.2, f));
                if s["order"] == "desc" {
                    o.reverse()
                } else {
                    o
                }
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.0.as_bytes().cmp(b.0.as_bytes()))
            .then_with(|| a.1.as_bytes().cmp(b.1.as_bytes()))
    });
    rows.into_iter()
        .map(|(k, i, _)| (k.clone(), i.clone()))
        .collect()
}

// ------------------------------------------------------------------------------------

pub(crate) async fn seeded() -> (TestApp, Vec<(String, String, Value)>) {
    let app = spawn_app_with(|s| s.cluster.tables.allowed.push(TABLE.into())).await;
    let all = records();
    for chunk in all.chunks(100) {
        let records: Vec<Value> = chunk
            .iter()
            .map(|(k, i, d)| json!({"shard_key": k, "id": i, "data": d}))
            .collect();
        let res = app
            .bulk(None, &json!({"table": TABLE, "records": records}))
            .await;
        assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
    }
    (app, all)
}

pub(crate) async fn query(app: &TestApp, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/query"))
        .json(body)
        .send()
        .await
        .expect("answered")
}

/// Every page of a query, walked with its cursors: each record's (shard key, id),
/// the shards seen, and the `total` of each page.
async fn walk(app: &TestApp, mut body: Value) -> (Vec<(String, String)>, HashSet<u64>, Vec<Value>) {
    let mut seen = Vec::new();
    let mut shards = HashSet::new();
    let mut totals = Vec::new();
    for _ in 0..RECORDS + 2 {
        let res = query(app, &body).await;
        let status = res.status().as_u16();
        let page: Value = res.json().await.unwrap();
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["shards"].as_array().unwrap().len(), 3, "{page}");
        let records = page["records"].as_array().unwrap();
        assert_eq!(page["count"], records.len());
        for r in records {
            seen.push((
                r["shard_key"].as_str().unwrap().to_owned(),
                r["id"].as_str().unwrap().to_owned(),
            ));
            shards.insert(r["shard"].as_u64().unwrap());
        }
        totals.push(page["total"].clone());
        match page["next"].as_str() {
            Some(next) => {
                assert!(!records.is_empty(), "a page with `next` holds a record");
                body["cursor"] = json!(next);
            }
            None => return (seen, shards, totals),
        }
    }
    panic!("the pages never ended")
}

#[tokio::test]
async fn query_answers_what_the_oracle_says_for_every_operator_sort_and_page() {
    let (app, all) = seeded().await;
    let c = |field: &str, op: &str, value: Value| json!({"field": field, "op": op, "value": value});
    let filters: Vec<Vec<Value>> = vec![
        vec![],
        vec![c("age", "eq", json!(40))],
        vec![c("age", "eq", json!("40"))],
        vec![c("age", "eq", Value::Null)],
        vec![c("address.city", "eq", json!("London"))],
        vec![c("address.city", "ne", json!("London"))],
        vec![c("age", "gt", json!(40))],
        vec![c("age", "gte", json!(40.5))],
        vec![c("age", "lt", json!(20))],
        vec![c("age", "lte", json!("5"))],
        vec![c("name", "gt", json!("Zed"))],
        vec![c("name", "lt", json!("ann"))],
        vec![c("address.city", "in", json!(["London", "Paris"]))],
        vec![c("age", "in", json!([1, 2, 3, "3", null]))],
        vec![c("address.city", "nin", json!(["London", "Paris"]))],
        vec![c("age", "exists", json!(true))],
        vec![c("address.city", "exists", json!(false))],
        vec![json!({"field": "name", "op": "exists"})],
        vec![c("name", "prefix", json!("A"))],
        vec![c("name", "prefix", json!("É"))],
        vec![c("tags", "contains", json!(["red"]))],
        vec![c("tags", "contains", json!("blue"))],
        vec![c("address", "contains", json!({"city": "Lyon"}))],
        vec![c("mixed", "eq", json!([1, 2]))],
        vec![c("mixed", "contains", json!({"k": 1}))],
        vec![c("tags.0", "eq", json!("green"))],
        vec![c("tags.-1", "eq", json!("green"))],
        vec![c("active", "eq", json!(true))],
        vec![c("active", "ne", json!(true))],
        // Several conditions: all must hold.
        vec![
            c("age", "gte", json!(40)),
            c("address.city", "in", json!(["London", "Paris"])),
        ],
    ];
    let sorts: Vec<Vec<Value>> = vec![
        vec![],
        vec![json!({"field": "score", "order": "desc"})],
        vec![json!({"field": "age"})],
        vec![
            json!({"field": "name", "order": "asc"}),
            json!({"field": "age", "order": "desc"}),
        ],
        vec![json!({"field": "mixed", "order": "desc"})],
        vec![
            json!({"field": "score"}),
            json!({"field": "address.city", "order": "desc"}),
            json!({"field": "active"}),
        ],
    ];
    let mut nonempty = 0;
    for filter in &filters {
        let expected = oracle(&all, filter, &[]);
        nonempty += usize::from(!expected.is_empty());
        let body = json!({"table": TABLE, "filter": filter, "limit": 1000, "consistency": "strong", "count": "exact"});
        let (seen, _, totals) = walk(&app, body).await;
        assert_eq!(seen, expected, "filter {filter:?}");
        assert_eq!(totals, [json!(expected.len())], "count of {filter:?}");
    }
    assert!(nonempty >= filters.len() - 2, "the filters select records");
    // Every sort, with and without a filter, walked in small pages: the pages join
    // into the oracle's order exactly.
    for sort in &sorts {
        for filter in [&filters[0], &filters[12], &filters[15]] {
            let expected = oracle(&all, filter, sort);
            let body = json!({"table": TABLE, "filter": filter, "sort": sort, "limit": 17,
                "consistency": "strong", "count": "exact"});
            let (seen, shards, totals) = walk(&app, body).await;
            assert_eq!(
                seen.len(),
                expected.len(),
                "sort {sort:?} filter {filter:?}"
            );
            assert_eq!(seen, expected, "sort {sort:?} filter {filter:?}");
            let unique: HashSet<_> = seen.iter().collect();
            assert_eq!(unique.len(), seen.len(), "no record twice");
            assert!(totals.iter().all(|t| *t == json!(expected.len())));
            if filter.is_empty() {
                assert_eq!(shards.len(), 3, "records from every shard");
            }
        }
    }
}

#[tokio::test]
async fn query_fields_counts_and_pages_while_records_are_written() {
    let (app, all) = seeded().await;
    let body = json!({"table": TABLE, "sort": [{"field": "age", "order": "desc"}],
        "fields": ["name", "address.city", "tags.0"], "limit": 1000, "consistency": "strong"});
    let page: Value = query(&app, &body).await.json().await.unwrap();
    assert!(page.get("total").is_none(), "no total unless asked");
    let records = page["records"].as_array().unwrap();
    assert_eq!(records.len(), RECORDS);
    for r in records {
        let (_, _, doc) = all
            .iter()
            .find(|(k, i, _)| r["shard_key"] == json!(k) && r["id"] == json!(i))
            .unwrap();
        let mut want = Map::new();
        if let Some(n) = doc.get("name") {
            want.insert("name".into(), n.clone());
        }
        if let Some(city) = at(doc, "address.city") {
            want.insert("address".into(), json!({"city": city}));
        }
        if let Some(t) = at(doc, "tags.0") {
            want.insert("tags".into(), json!({"0": t}));
        }
        assert_eq!(r["data"], Value::Object(want), "fields of {r}");
        assert!(r["version"].is_i64() && r["updated_at"].is_string());
    }

    // An estimate is a number; eventual reads answer too, from any role.
    let body = json!({"table": TABLE, "count": "estimated", "consistency": "eventual", "limit": 5});
    let res = query(&app, &body).await;
    assert_eq!(res.status().as_u16(), 200);
    let page: Value = res.json().await.unwrap();
    assert!(page["total"].is_u64(), "{page}");
    assert_eq!(page["count"], 5);
    assert!(page["next"].is_string());

    // Pages walked while records are written between them: every record there from
    // start to end is seen once, none twice.
    let mut body = json!({"table": TABLE, "sort": [{"field": "score", "order": "desc"}, {"field": "name"}],
        "limit": 23, "consistency": "strong"});
    let mut seen = Vec::new();
    for round in 0.. {
        let page: Value = query(&app, &body).await.json().await.unwrap();
        for r in page["records"].as_array().unwrap() {
            seen.push((r["shard_key"].clone(), r["id"].clone()));
        }
        let fresh: Vec<Value> = (0..10)
            .map(|i| {
                json!({"shard_key": format!("new{round}_{i}"), "id": format!("n{i}"),
                "data": {"score": (round + i) % 6, "name": "new"}})
            })
            .collect();
        let res = app
            .bulk(None, &json!({"table": TABLE, "records": fresh}))
            .await;
        assert_eq!(res.status().as_u16(), 200);
        match page["next"].as_str() {
            Some(next) => body["cursor"] = json!(next),
            None => break,
        }
    }
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no record twice");
    for (k, i, _) in &all {
        assert!(unique.contains(&(json!(k), json!(i))), "{k}/{i} was missed");
    }
}

#[tokio::test]
async fn every_bad_query_is_a_problem_that_names_it() {
    let app = spawn_app_with(|s| s.cluster.tables.allowed.push(TABLE.into())).await;
    let t = |extra: Value| {
        let mut body = json!({"table": TABLE});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let cond = |field: &str, op: &str, value: Value| {
        t(json!({"filter": [{"field": field, "op": op, "value": value}]}))
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            cond("age", "like", json!(1)),
            400,
            "unknown operator \"like\"",
        ),
        (cond("a..b", "eq", json!(1)), 400, "bad path \"a..b\""),
        (cond("a b", "eq", json!(1)), 400, "bad path"),
        (cond("", "eq", json!(1)), 400, "bad path"),
        (
            cond("x.".repeat(9).trim_end_matches('.'), "eq", json!(1)),
            400,
            "segments",
        ),
        (
            cond("name", "prefix", json!(4)),
            400,
            "`prefix` on \"name\" cannot take a number",
        ),
        (
            cond("age", "in", json!(4)),
            400,
            "`in` on \"age\" cannot take a number",
        ),
        (cond("age", "nin", json!("x")), 400, "`nin`"),
        (
            cond("age", "gt", json!(true)),
            400,
            "`gt` on \"age\" cannot take a boolean",
        ),
        (cond("age", "lte", json!([1])), 400, "cannot take an array"),
        (cond("age", "exists", json!("yes")), 400, "`exists`"),
        (
            t(json!({"filter": [{"field": "age", "op": "eq"}]})),
            400,
            "needs a `value`",
        ),
        (
            cond("age", "in", json!((0..101).collect::<Vec<_>>())),
            400,
            "at most 100",
        ),
        (t(json!({"limit": 0})), 400, "limit is 0"),
        (t(json!({"limit": 10001})), 400, "limit is 10001"),
        (t(json!({"limit": -5})), 400, "limit is -5"),
        (t(json!({"cursor": "zz"})), 400, "invalid cursor"),
        (t(json!({"cursor": "5b5d"})), 400, "invalid cursor"),
        (
            t(json!({"fields": ["name", "a..b"]})),
            400,
            "bad path \"a..b\"",
        ),
        (
            t(json!({"fields": ["name", "name"]})),
            400,
            "names \"name\" twice",
        ),
        (
            t(json!({"sort": [{"field": "age", "order": "up"}]})),
            400,
            "unknown sort order \"up\"",
        ),
        (
            t(json!({"sort": [{"field": "a.", "order": "asc"}]})),
            400,
            "bad path",
        ),
        (
            t(
                json!({"sort": (0..5).map(|i| json!({"field": format!("f{i}")})).collect::<Vec<_>>()}),
            ),
            400,
            "`sort` has 5 entries",
        ),
        (
            t(json!({"count": "roughly"})),
            400,
            "unknown count \"roughly\"",
        ),
        (
            t(json!({"consistency": "snapshot", "cursor": "snap-zz"})),
            400,
            "not one a snapshot query gave",
        ),
        (t(json!({"consistency": "sometimes"})), 400, "sometimes"),
        (json!({"table": "nope"}), 422, "unknown table"),
        (t(json!({"colour": "red"})), 422, "colour"),
        (t(json!({"limit": "ten"})), 400, "limit is \"ten\""),
        (t(json!({"limit": 2.5})), 400, "limit is 2.5"),
    ];
    for (body, status, named) in cases {
        let res = query(&app, &body).await;
        let problem = assert_problem(res, status).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains(named),
            "{body}: {detail:?} does not name {named:?}"
        );
    }
    // A cursor from a query sorted by one field does not fit one sorted by two.
    // (Strong: from the primaries, which hold both records at once.)
    let seeded =
        json!({"table": TABLE, "sort": [{"field": "age"}], "limit": 1, "consistency": "strong"});
    app.bulk(
        None,
        &json!({"table": TABLE, "records": [
        {"shard_key": "a", "id": "1", "data": {"age": 1}},
        {"shard_key": "b", "id": "2", "data": {"age": 2}}]}),
    )
    .await;
    let page: Value = query(&app, &seeded).await.json().await.unwrap();
    let next = page["next"].as_str().expect("a next page");
    let two =
        json!({"table": TABLE, "sort": [{"field": "age"}, {"field": "name"}], "cursor": next});
    let problem = assert_problem(query(&app, &two).await, 400).await;
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("invalid cursor"));
}

/// Pages go on past long sort values, at `strong` and at a snapshot: a sort compares a
/// text's first 1024 characters, so a cursor stays small: a value over about 8 kB must
/// not make a `next` cursor the same gateway then refuses (400, invalid cursor).
#[tokio::test]
async fn pages_go_on_past_long_sort_values_at_strong_and_at_a_snapshot() {
    let app = spawn_app_with(|s| s.cluster.tables.allowed.push(TABLE.into())).await;
    // Twelve records, each sorted by a 10 kB string; pairs alike for their first 2000
    // characters are tied, and go by shard key then id.
    let mut expected = Vec::new();
    for i in 0..12u8 {
        let head = char::from(b'a' + i / 2).to_string().repeat(2000);
        let tail = char::from(b'z' - i % 2).to_string().repeat(8000);
        let (key, id) = (format!("k{i}"), format!("i{i}"));
        let res = app
            .write(
                &key,
                &json!({"table": TABLE, "id": id, "data": {"long": format!("{head}{tail}")}}),
            )
            .await;
        assert_eq!(res.status().as_u16(), 201, "{}", res.text().await.unwrap());
        expected.push((i / 2, key, id));
    }
    expected.sort();
    let expected: Vec<(String, String)> = expected.into_iter().map(|(_, k, i)| (k, i)).collect();
    for consistency in ["strong", "snapshot"] {
        let body = json!({"table": TABLE, "sort": [{"field": "long"}], "limit": 1,
                          "consistency": consistency});
        let (seen, _, _) = walk(&app, body).await;
        assert_eq!(seen, expected, "at {consistency}");
    }
}
