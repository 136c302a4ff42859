//! `GET /api/export` as CSV is safe to open in a spreadsheet: a cell that starts like
//! a formula (`=`, `+`, `-`, `@`, tab, CR) comes back with a leading `'`; `raw=true`
//! gives the cells as written; NDJSON is never changed.

use serde_json::{json, Value};
use test_app::{assert_problem, spawn_app, TestApp};

use crate::export_format::{by_identity, csv, ndjson};

/// One record per leading character, its key and id both starting with it, its data
/// holding a negative number and a formula-like string.
fn formulas() -> Vec<(String, String, Value)> {
    ["=", "+", "-", "@", "\t", "\r"]
        .iter()
        .enumerate()
        .map(|(i, c)| {
            (
                format!("{c}HYPERLINK(\"http://x\",\"k{i}\")"),
                format!("{c}id{i}"),
                json!({"n": -(i as i64) - 1, "f": format!("{c}1+1")}),
            )
        })
        .collect()
}

async fn write(app: &TestApp, records: &[(String, String, Value)]) {
    let body: Vec<Value> = records
        .iter()
        .map(|(k, id, data)| json!({"shard_key": k, "id": id, "data": data}))
        .collect();
    let res = app
        .bulk(None, &json!({"table": "users", "records": body}))
        .await;
    assert_eq!(res.status().as_u16(), 200, "{:?}", res.text().await);
}

async fn export(app: &TestApp, query: &str, accept: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/api/export?table=users{query}")))
        .header("accept", accept)
        .send()
        .await
        .expect("export")
}

async fn csv_text(app: &TestApp, query: &str) -> String {
    let res = export(app, query, "text/csv").await;
    assert_eq!(res.status().as_u16(), 200);
    res.text().await.unwrap()
}

#[tokio::test]
async fn csv_cells_that_start_like_formulas_come_back_with_a_leading_quote() {
    let app = spawn_app().await;
    let written = formulas();
    write(&app, &written).await;

    let body = csv_text(&app, "").await;
    let exported = by_identity(csv(&body));
    assert_eq!(exported.len(), written.len());
    for (key, id, data) in &written {
        // Each leading character, in the key and the id; the data cell is a JSON
        // object, so its -1 and "=1+1" are as written.
        let cell = (format!("'{key}"), format!("'{id}"));
        assert_eq!(exported.get(&cell), Some(data), "{cell:?} in {body:?}");
    }
    // The example of the issue, byte for byte.
    assert!(
        body.contains("\"'=HYPERLINK(\"\"http://x\"\",\"\"k0\"\")\",'=id0,"),
        "{body:?}"
    );
    assert!(!body.contains("\n=") && !body.contains(",=") && !body.contains(",@"));
}

#[tokio::test]
async fn raw_csv_gives_the_cells_as_written_and_ndjson_never_changes() {
    let app = spawn_app().await;
    let written = formulas();
    write(&app, &written).await;
    let want = by_identity(written.clone());

    let raw = csv_text(&app, "&raw=true").await;
    assert_eq!(by_identity(csv(&raw)), want);
    assert!(raw.contains("\"=HYPERLINK(\"\"http://x\"\",\"\"k0\"\")\",=id0,"));
    // raw=false is the default.
    let safe = csv_text(&app, "&raw=false").await;
    assert_eq!(safe, csv_text(&app, "").await);
    assert_ne!(safe, raw);

    for query in ["", "&raw=true", "&raw=false"] {
        let res = export(&app, query, "application/x-ndjson").await;
        assert_eq!(res.status().as_u16(), 200);
        let (records, end) = ndjson(&res.text().await.unwrap());
        assert_eq!(by_identity(records), want, "{query}");
        assert_eq!(end["end"]["records"], written.len());
    }
}

#[tokio::test]
async fn a_raw_other_than_true_or_false_is_refused_naming_it() {
    let app = spawn_app().await;
    for bad in ["1", "yes", "TRUE", ""] {
        let res = export(&app, &format!("&raw={bad}"), "text/csv").await;
        let problem = assert_problem(res, 400).await;
        assert_eq!(problem["type"], "urn:shardgate:problem:invalid-query");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("`raw`"), "{detail}");
        assert!(detail.contains("true or false"), "{detail}");
    }
}
