//! `POST /api/query` at `"consistency": "snapshot"`: every page of a query read at its
//! first page's cut, through either of two gateways, while records are written,
//! changed and deleted between pages, checked against the oracle of [`crate::query`];
//! a transaction across shards committed between pages seen whole or not at all (at
//! `strong` the same walk sees half of it: the test can fail), also with transfers
//! running all along; the cursor's bound (410, naming it); a cursor sent with another
//! query, or of another kind, refused (400, naming why).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use test_app::{assert_problem, spawn_app_with, TestApp};

use crate::query::{oracle, query, same, seeded, TABLE};

/// A query sent to the gateway at `base`.
async fn query_at(app: &TestApp, base: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(format!("{base}/api/query"))
        .json(body)
        .send()
        .await
        .expect("answered")
}

/// A page answered 200, as JSON.
async fn page_of(res: reqwest::Response) -> Value {
    let status = res.status().as_u16();
    let page: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{page}");
    page
}

fn key_id(r: &Value) -> (String, String) {
    (
        r["shard_key"].as_str().unwrap().to_owned(),
        r["id"].as_str().unwrap().to_owned(),
    )
}

/// `doc` with only `score` and `name`, as `"fields": ["score", "name"]` answers it.
fn score_and_name(doc: &Value) -> Value {
    let mut out = Map::new();
    for f in ["score", "name"] {
        if let Some(v) = doc.get(f) {
            out.insert(f.into(), v.clone());
        }
    }
    Value::Object(out)
}

#[tokio::test]
async fn a_snapshot_query_reads_exactly_its_cut_on_every_page_through_any_gateway() {
    let (app, all) = seeded().await;
    let second = app.beside().await;
    let other = second.address.clone();
    let filter = vec![json!({"field": "score", "op": "gte", "value": 2})];
    let sort = vec![
        json!({"field": "score", "order": "desc"}),
        json!({"field": "name"}),
    ];
    let expected = oracle(&all, &filter, &sort);
    assert!(expected.len() > 150, "the filter selects most records");
    let doc_of = |k: &str, i: &str| {
        all.iter()
            .find(|(key, id, _)| key == k && id == i)
            .map(|(_, _, d)| d.clone())
            .unwrap()
    };
    // What the cluster holds after the writes below: the records, by (key, id).
    let mut now = all.clone();

    let mut body = json!({"table": TABLE, "filter": filter, "sort": sort, "limit": 29,
        "count": "exact", "consistency": "snapshot"});
    let mut seen: Vec<(String, String)> = Vec::new();
    // The records of the cut changed or deleted since.
    let mut touched: HashSet<(String, String)> = HashSet::new();
    let mut cut = Value::Null;
    let mut pages = 0;
    loop {
        // Pages alternate between the gateways; every other one asks only two fields
        // and the plans (the page size, fields, count and plan may change; the query
        // may not).
        let base = [&app.address, &other][pages % 2];
        let projected = pages % 2 == 1;
        if projected {
            body["fields"] = json!(["score", "name"]);
            body["explain"] = json!(true);
        } else {
            body.as_object_mut().unwrap().remove("fields");
            body.as_object_mut().unwrap().remove("explain");
        }
        let page = page_of(query_at(&app, base, &body).await).await;
        pages += 1;
        match pages {
            1 => cut = page["snapshot"]["id"].clone(),
            _ => assert_eq!(page["snapshot"]["id"], cut, "page {pages}: the same cut"),
        }
        assert_eq!(page["snapshot"]["shards"].as_array().unwrap().len(), 3);
        assert_eq!(
            page["total"],
            json!(expected.len()),
            "page {pages}: the count at the cut"
        );
        let sources: Vec<&Value> = page["shards"].as_array().unwrap().iter().collect();
        assert_eq!(sources.len(), 3, "{page}");
        assert!(sources.iter().all(|s| s["source"] == "primary"), "{page}");
        match projected {
            true => assert_eq!(page["plans"].as_array().unwrap().len(), 3, "{page}"),
            false => assert!(page.get("plans").is_none(), "{page}"),
        }
        for r in page["records"].as_array().unwrap() {
            let (k, i) = key_id(r);
            // The data at the cut, whatever was written since.
            let doc = doc_of(&k, &i);
            let want = if projected { score_and_name(&doc) } else { doc };
            assert!(
                same(&r["data"], &want),
                "{k}/{i}: {} at the cut, not {}",
                want,
                r["data"]
            );
            seen.push((k, i));
        }
        let Some(next) = page["next"].as_str() else {
            break;
        };
        assert!(next.starts_with("snap-"), "{next}");
        body["cursor"] = json!(next);

        // Between pages: new records that match, anywhere in the order; a record not
        // read yet changed so it no longer matches, another so it now does; one not
        // read yet deleted.
        let fresh: Vec<Value> = (0..5)
            .map(|i| {
                json!({"shard_key": format!("snapnew{pages}_{i}"), "id": format!("s{i}"),
                    "data": {"score": 2 + (pages + i) % 4, "name": format!("n{i}")}})
            })
            .collect();
        // Records the walk has not read, each changed once.
        let unread: Vec<&(String, String)> = expected[seen.len()..]
            .iter()
            .filter(|r| !touched.contains(*r))
            .collect();
        let (gone, dropped) = match unread.len() {
            0 | 1 => (None, None),
            n => (Some(unread[n - 1].clone()), Some(unread[n / 2].clone())),
        };
        let joined = all
            .iter()
            .filter(|(_, _, d)| d["score"].as_u64() < Some(2))
            .nth(pages)
            .unwrap();
        let mut changed = vec![
            json!({"shard_key": joined.0, "id": joined.1, "data": {"score": 5, "name": "up"}}),
        ];
        if let Some((k, i)) = &dropped {
            changed.push(json!({"shard_key": k, "id": i, "data": {"score": 0}}));
        }
        changed.extend(fresh.iter().cloned());
        let res = app
            .bulk(None, &json!({"table": TABLE, "records": changed}))
            .await;
        assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
        for c in &changed {
            let (k, i) = key_id(c);
            now.retain(|(key, id, _)| !(key == &k && id == &i));
            now.push((k, i, c["data"].clone()));
        }
        if let Some((k, i)) = &gone {
            let res = app.delete(k, TABLE, i).await;
            assert!(res.status().is_success(), "{}", res.text().await.unwrap());
            now.retain(|(key, id, _)| !(key == k && id == i));
        }
        touched.extend(gone.into_iter().chain(dropped));
    }
    assert!(touched.len() >= 8, "{} records changed", touched.len());
    assert!(pages >= 5, "{pages} pages");
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no record twice");
    assert_eq!(seen, expected, "exactly the records of the cut, in order");

    // A new snapshot query sees every write since: another cut, the oracle of now.
    body.as_object_mut().unwrap().remove("cursor");
    body["limit"] = json!(1000);
    let page = page_of(query(&app, &body).await).await;
    assert_ne!(page["snapshot"]["id"], cut);
    let latest: Vec<(String, String)> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(key_id)
        .collect();
    assert_eq!(latest, oracle(&now, &filter, &sort));
    assert_ne!(latest.len(), expected.len());
}

const BANK: &str = "query_bank";
const ACCOUNTS: usize = 30;
const OPENING: i64 = 100;

fn account(i: usize) -> String {
    format!("qb-{i:02}")
}

/// A gateway that may query the bank's table and holds up to 4 cuts for next pages
/// (a quarter of its pool): the tests walk several snapshot queries within 5 s.
async fn bank_app() -> TestApp {
    spawn_app_with(|s| {
        s.cluster.tables.allowed.push(BANK.into());
        s.cluster.database.pool_max_size = 16;
    })
    .await
}

/// Every account at `OPENING`, written through the gateway.
async fn open_accounts(app: &TestApp) {
    let records: Vec<Value> = (0..ACCOUNTS)
        .map(|i| json!({"shard_key": account(i), "id": account(i), "data": {"n": i, "balance": OPENING}}))
        .collect();
    let res = app
        .bulk(None, &json!({"table": BANK, "records": records}))
        .await;
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
}

/// Moves `amount` from `from` to `to` in one transaction (two shards): committed.
async fn transfer(
    app: &TestApp,
    from: usize,
    to: usize,
    balances: (i64, i64),
    amount: i64,
) -> bool {
    let ops = json!([
        {"table": BANK, "shard_key": account(from), "id": account(from),
         "data": {"n": from, "balance": balances.0 - amount}},
        {"table": BANK, "shard_key": account(to), "id": account(to),
         "data": {"n": to, "balance": balances.1 + amount}},
    ]);
    let res = app
        .post_json("/api/transaction", None, &json!({"operations": ops}))
        .await;
    match res.status().as_u16() {
        200 => {
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["protocol"], "two-phase", "{body}");
            true
        }
        409 | 503 => false,
        other => panic!("transfer: {other} {}", res.text().await.unwrap()),
    }
}

/// Every account's balance by `n`, from a query at `consistency` walked in pages of
/// 7, calling `between` after the first page; and the number of pages.
async fn balances(
    app: &TestApp,
    consistency: &str,
    between: impl AsyncFnOnce(),
) -> (Vec<Option<i64>>, usize) {
    let mut body = json!({"table": BANK, "sort": [{"field": "n"}], "limit": 7,
        "consistency": consistency});
    let mut by_n = vec![None; ACCOUNTS];
    let mut between = Some(between);
    let mut pages = 0;
    loop {
        let page = page_of(query(app, &body).await).await;
        pages += 1;
        for r in page["records"].as_array().unwrap() {
            let n = r["data"]["n"].as_u64().unwrap() as usize;
            assert!(by_n[n].is_none(), "account {n} twice");
            by_n[n] = r["data"]["balance"].as_i64();
        }
        if let Some(between) = between.take() {
            between().await;
        }
        match page["next"].as_str() {
            Some(next) => body["cursor"] = json!(next),
            None => return (by_n, pages),
        }
    }
}

#[tokio::test]
async fn a_transaction_across_shards_committed_between_pages_is_seen_whole_or_not_at_all() {
    let app = bank_app().await;
    open_accounts(&app).await;
    // Account 1 is on the first page; the credited one on the last, on another shard.
    let to = (22..ACCOUNTS)
        .find(|j| app.shard_of(&account(*j)) != app.shard_of(&account(1)))
        .unwrap();
    let total = OPENING * ACCOUNTS as i64;

    // At `snapshot`: the transfer committed after the first page is in none of them.
    let (seen, pages) = balances(&app, "snapshot", async || {
        assert!(transfer(&app, 1, to, (OPENING, OPENING), 50).await);
    })
    .await;
    assert!(pages >= 5, "{pages} pages");
    let seen: Vec<i64> = seen
        .into_iter()
        .map(|b| b.expect("every account"))
        .collect();
    assert_eq!((seen[1], seen[to]), (OPENING, OPENING), "not at all");
    assert_eq!(seen.iter().sum::<i64>(), total);

    // A new snapshot: the whole of it.
    let (seen, _) = balances(&app, "snapshot", async || {}).await;
    let seen: Vec<i64> = seen
        .into_iter()
        .map(|b| b.expect("every account"))
        .collect();
    assert_eq!(
        (seen[1], seen[to]),
        (OPENING - 50, OPENING + 50),
        "entirely"
    );
    assert_eq!(seen.iter().sum::<i64>(), total);

    // At `strong` the same walk sees half of the next one: the credit, not the debit.
    let (seen, _) = balances(&app, "strong", async || {
        assert!(transfer(&app, 1, to, (OPENING - 50, OPENING + 50), 25).await);
    })
    .await;
    let seen: Vec<i64> = seen
        .into_iter()
        .map(|b| b.expect("every account"))
        .collect();
    assert_eq!((seen[1], seen[to]), (OPENING - 50, OPENING + 75), "half");
    assert_eq!(seen.iter().sum::<i64>(), total + 25);
}

#[tokio::test]
async fn snapshot_query_walks_stay_whole_while_transfers_across_shards_commit() {
    let app = Arc::new(bank_app().await);
    open_accounts(&app).await;
    let total = OPENING * ACCOUNTS as i64;
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    // One client moving money between accounts on different shards, all along.
    let mover = {
        let (app, stop, committed) = (app.clone(), stop.clone(), committed.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let from = (i * 7) % ACCOUNTS;
                let Some(to) = (1..ACCOUNTS)
                    .map(|d| (from + d * 5) % ACCOUNTS)
                    .find(|t| app.shard_of(&account(*t)) != app.shard_of(&account(from)))
                else {
                    continue;
                };
                let balance = |n: usize| {
                    let app = app.clone();
                    async move {
                        let res = app.read_strong(&account(n), BANK, &account(n)).await;
                        let body: Value = res.json().await.unwrap();
                        body["record"]["data"]["balance"].as_i64().unwrap()
                    }
                };
                let (fb, tb) = (balance(from).await, balance(to).await);
                if fb > 0 && transfer(&app, from, to, (fb, tb), fb.min(13)).await {
                    committed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    // Four walks (the cuts this gateway may hold at once), transfers committing
    // between their pages.
    let mut during = 0;
    for walk in 0..4 {
        let before = committed.load(Ordering::Relaxed);
        let (seen, pages) = balances(&app, "snapshot", async || {
            tokio::time::sleep(Duration::from_millis(300)).await;
        })
        .await;
        during += committed.load(Ordering::Relaxed) - before;
        assert!(pages >= 5, "{pages} pages");
        let seen: Vec<i64> = seen
            .into_iter()
            .map(|b| b.expect("every account"))
            .collect();
        assert_eq!(seen.iter().sum::<i64>(), total, "walk {walk}: {seen:?}");
    }
    stop.store(true, Ordering::Relaxed);
    mover.await.unwrap();
    assert!(
        during >= 4,
        "only {during} transfers committed during the walks"
    );
}

#[tokio::test]
async fn a_snapshot_querys_cursor_expires_after_its_bound() {
    let app = bank_app().await;
    open_accounts(&app).await;
    let body = json!({"table": BANK, "sort": [{"field": "n"}], "limit": 4,
        "consistency": "snapshot"});
    let first = page_of(query(&app, &body).await).await;
    let next = first["next"].as_str().unwrap().to_owned();
    let mut again = body.clone();
    again["cursor"] = json!(next);
    // Within the bound: the next page.
    let second = page_of(query(&app, &again).await).await;
    assert_eq!(second["records"][0]["data"]["n"], 4);
    // Past it: refused, naming the bound.
    tokio::time::sleep(Duration::from_millis(5_100)).await;
    let problem = assert_problem(query(&app, &again).await, 410).await;
    assert_eq!(problem["type"], "urn:shardgate:problem:snapshot-expired");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("this query's snapshot expired") && detail.contains("5000 ms"),
        "{problem}"
    );
}

#[tokio::test]
async fn a_snapshot_querys_cursor_is_refused_with_another_query_or_of_another_kind() {
    let app = bank_app().await;
    open_accounts(&app).await;
    let body = json!({"table": BANK, "filter": [{"field": "n", "op": "gte", "value": 0}],
        "sort": [{"field": "n"}], "limit": 4, "consistency": "snapshot"});
    let first = page_of(query(&app, &body).await).await;
    let next = first["next"].as_str().unwrap().to_owned();
    let with = |changes: Value| {
        let mut b = body.clone();
        b["cursor"] = json!(next);
        b.as_object_mut()
            .unwrap()
            .extend(changes.as_object().unwrap().clone());
        b
    };
    let other_query = "the cursor is a snapshot query's for another table, filter or sort";
    let cases = [
        (
            with(json!({"filter": [{"field": "n", "op": "gte", "value": 1}]})),
            other_query,
        ),
        (with(json!({"filter": []})), other_query),
        (
            with(json!({"sort": [{"field": "n", "order": "desc"}]})),
            other_query,
        ),
        (with(json!({"sort": [{"field": "balance"}]})), other_query),
        (with(json!({"table": "users"})), other_query),
        // Not a cursor a snapshot query gave.
        (
            with(json!({"cursor": "snap-7a7a"})),
            "not one a snapshot query gave",
        ),
        (
            with(json!({"cursor": "5b5d"})),
            "not one a snapshot query gave",
        ),
        // A snapshot query's cursor at another consistency.
        (with(json!({"consistency": "strong"})), "invalid cursor"),
    ];
    for (bad, named) in cases {
        let problem = assert_problem(query(&app, &bad).await, 400).await;
        assert_eq!(
            problem["type"], "urn:shardgate:problem:invalid-query",
            "{bad}"
        );
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains(named),
            "{bad}: {detail:?} does not name {named:?}"
        );
    }
    // A snapshot list's cursor is not a query's, nor a query's a list's.
    let list = app
        .get_json(&format!(
            "/api/read?table={BANK}&limit=4&consistency=snapshot"
        ))
        .await;
    let list_next = list["next"].as_str().unwrap();
    let problem = assert_problem(query(&app, &with(json!({"cursor": list_next}))).await, 400).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not one a snapshot query gave"),
        "{problem}"
    );
    let res = app
        .client
        .get(app.url(&format!(
            "/api/read?table={BANK}&limit=4&consistency=snapshot&cursor={next}"
        )))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(res, 400).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not one a snapshot list gave"),
        "{problem}"
    );
    // The same query with another page size, fields, count and plan: the next page.
    let second = page_of(
        query(
            &app,
            &with(json!({"limit": 3, "fields": ["n"], "count": "exact", "explain": true})),
        )
        .await,
    )
    .await;
    let ns: Vec<&Value> = second["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["data"]["n"])
        .collect();
    assert_eq!(ns, [&json!(4), &json!(5), &json!(6)]);
    assert_eq!(second["total"], ACCOUNTS);
    assert_eq!(second["records"][0]["data"], json!({"n": 4}));
    assert_eq!(second["snapshot"]["id"], first["snapshot"]["id"]);
}
