//! The published OpenAPI document against the running gateway: every operation is sent
//! requests built from the document (valid and mutated, from a seeded RNG), and every
//! answer must be one the document promises: a documented status, its content type,
//! a body its schema accepts, the headers it names, and never a 5xx while the topology
//! is up. Every mismatch is collected and reported in one failure.
//!
//! The fuzzer's requests carry no `Authorization` and come from loopback: with no API
//! key, the gateway serves them (protected mode), so every operation's `security` must
//! allow an anonymous caller (an empty requirement `{}`), or they are requests the
//! document forbids and must be refused.
//!
//! `SPEC_TRACE=1` prints every request's label, status and the start of its body.

mod bodies;
mod case;
mod cases;
pub mod schema;

use rand::rngs::StdRng;
use rand::SeedableRng;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::Method;
use serde_json::{json, Value};
use test_app::{spawn_app_with, TestApp};

use case::{Case, Expect, Known};

/// Response headers the gateway sets itself: each must be documented where it appears.
const OWN_HEADERS: &[&str] = &[
    "x-request-id",
    "x-shard-lsn",
    "x-cache",
    "etag",
    "x-partial-results",
    "retry-after",
    "allow",
    "ratelimit-policy",
    "ratelimit",
];

#[tokio::test]
async fn every_answer_to_requests_made_from_the_published_spec_is_one_it_documents() {
    let app = spawn_app_with(|s| {
        // Small enough that 413s are cheap to reach.
        s.server.max_body_bytes = 64 * 1024;
        s.server.max_batch_records = 50;
    })
    .await;
    let doc: Value = app.get_json("/api-docs/openapi.json").await;
    let known = fixture(&app).await;
    let mut rng = StdRng::seed_from_u64(0x5_4a2d_9a7e);

    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                all.extend(cases::for_operation(
                    &doc, &known, &mut rng, path, method, op,
                ));
            }
        }
        all.extend(cases::wrong_methods(path, item, &known));
    }
    let mut mismatches = static_problems(&doc);
    for case in &all {
        let answer = send(&app, &known, case).await;
        let found = check(&doc, case, &answer);
        if std::env::var("SPEC_TRACE").is_ok() {
            eprintln!(
                "spec: {} {} [{}] {} {}",
                case.method,
                case.path,
                case.label,
                answer.status,
                String::from_utf8_lossy(&answer.body)
                    .chars()
                    .take(160)
                    .collect::<String>()
            );
        }
        if case.method == "delete" && answer.status == 204 {
            restore(&app).await;
        }
        if case.path == "/api/indexes/{name}" && case.method == "delete" && answer.status == 202 {
            restore_index(&app).await;
        }
        mismatches.extend(found.into_iter().map(|m| {
            let query = case.query_string();
            let shown: String = query.chars().take(120).collect();
            format!(
                "{} {}?{shown} [{}] → {}: {m}",
                case.method.to_uppercase(),
                case.path,
                case.label,
                answer.status
            )
        }));
    }

    assert!(
        mismatches.is_empty(),
        "{} mismatches in {} requests:\n{}",
        mismatches.len(),
        all.len(),
        mismatches.join("\n")
    );
    assert!(all.len() > 300, "only {} requests", all.len());
}

/// The record every request may name, written anew after a delete removes it.
async fn restore(app: &TestApp) -> reqwest::Response {
    let res = app
        .write(
            "spec-user",
            &json!({"table": "users", "id": "spec-1", "data": {"name": "Ada", "grade": "A"}}),
        )
        .await;
    assert!(res.status().is_success(), "fixture write: {}", res.status());
    res
}

/// The index every request may name (the body example's), made anew after a drop
/// (once the drop has ended: an index being dropped cannot be asked for).
async fn restore_index(app: &TestApp) -> String {
    let spec =
        shard_manager::store::query_index::IndexSpec::parse("users", &["age".into()]).unwrap();
    let name = spec.name();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let res = app
            .post_json(
                "/api/indexes",
                None,
                &json!({"table": "users", "fields": ["age"]}),
            )
            .await;
        if res.status().as_u16() == 202 {
            return name;
        }
        assert_eq!(res.status().as_u16(), 409, "fixture index");
        assert!(
            std::time::Instant::now() < deadline,
            "the index was never dropped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Stores records and collects real values: the key, the id, a cursor and a token.
async fn fixture(app: &TestApp) -> Known {
    let token = restore(app).await.headers()["x-shard-lsn"]
        .to_str()
        .unwrap()
        .to_owned();
    for i in 0..3 {
        let body = json!({"table": "users", "id": format!("spec-{}", i + 2), "data": {"i": i}});
        assert!(app.write("spec-user", &body).await.status().is_success());
    }
    // Strong: an eventual read right after the writes may find a replica that has
    // not replayed them yet, and then no second page.
    let page: Value = app
        .get(
            "spec-user",
            "/api/read?table=users&limit=1&consistency=strong",
        )
        .await
        .json()
        .await
        .unwrap();
    let cursor = page["next"].as_str().expect("a next page").to_owned();
    let index = restore_index(app).await;
    Known {
        values: vec![
            ("table", "users".into()),
            ("x-shard-key", "spec-user".into()),
            ("id", "spec-1".into()),
            ("key", "spec-user".into()),
            ("cursor", cursor),
            ("x-min-lsn", token),
            // Any version of the fixture's record: a write or delete applies.
            ("if-match", "*".into()),
            ("name", index),
        ],
    }
}

/// What came back.
struct Answer {
    status: u16,
    content_type: Option<String>,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

async fn send(app: &TestApp, known: &Known, case: &Case) -> Answer {
    let method = Method::from_bytes(case.method.to_uppercase().as_bytes()).unwrap();
    // A path parameter takes its known value (the document's path stays the case's).
    let mut url = app.url(
        &case
            .path
            .replace("{name}", known.get("name").unwrap_or("x")),
    );
    if !case.query.is_empty() {
        url = format!("{url}?{}", case.query_string());
    }
    let mut req = app.client.request(method, &url);
    for (name, value) in &case.headers {
        let value = HeaderValue::from_bytes(value).expect("a sendable header value");
        req = req.header(HeaderName::from_bytes(name.as_bytes()).unwrap(), value);
    }
    if let Some((ctype, bytes)) = &case.body {
        if let Some(ctype) = ctype {
            req = req.header("content-type", ctype.as_str());
        }
        req = req.body(bytes.clone());
    }
    let res = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{} {url} [{}]: {e}", case.method, case.label));
    Answer {
        status: res.status().as_u16(),
        content_type: res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned()),
        headers: res.headers().clone(),
        body: res.bytes().await.unwrap().to_vec(),
    }
}

/// The document's answer for this case: the operation's response for the status, or
/// for an undocumented method, the 405 some operation of the path documents.
fn documented<'d>(doc: &'d Value, case: &Case, status: u16) -> Option<&'d Value> {
    let item = &doc["paths"][case.path.as_str()];
    let status = status.to_string();
    if case.documented {
        let responses = &item[case.method.as_str()]["responses"];
        responses.get(&status).or_else(|| responses.get("default"))
    } else {
        item.as_object()?
            .values()
            .find_map(|op| op["responses"].get(&status))
    }
}

fn check(doc: &Value, case: &Case, answer: &Answer) -> Vec<String> {
    let mut out = Vec::new();
    let status = answer.status;
    let body_text = || {
        String::from_utf8_lossy(&answer.body)
            .chars()
            .take(200)
            .collect::<String>()
    };
    if status >= 500 {
        out.push(format!("server error: {}", body_text()));
    }
    match case.expect {
        Expect::Success if !(200..300).contains(&status) => out.push(format!(
            "a request built from the document was refused: {}",
            body_text()
        )),
        Expect::ClientError if !(400..500).contains(&status) => {
            out.push("a request the document forbids was not refused".into())
        }
        _ => {}
    }
    if case.documented && (200..300).contains(&status) && !anonymous_allowed(doc, case) {
        out.push(
            "served without credentials, yet the document's `security` requires them (no \
             anonymous `{}` alternative)"
                .into(),
        );
    }
    if !answer.headers.contains_key("x-request-id") {
        out.push("no x-request-id".into());
    }
    if status == 405 && !answer.headers.contains_key("allow") {
        out.push("405 without Allow".into());
    }
    if status == 503
        && answer.content_type.as_deref() == Some("application/problem+json")
        && !answer.headers.contains_key("retry-after")
    {
        out.push("503 problem without Retry-After".into());
    }
    let Some(response) = documented(doc, case, status) else {
        out.push(format!(
            "status {status} is not documented: {}",
            body_text()
        ));
        return out;
    };
    let response = match response.get("$ref").and_then(Value::as_str) {
        Some(r) => schema::resolve(doc, r).unwrap_or(response),
        None => response,
    };
    for name in OWN_HEADERS {
        let listed = response["headers"]
            .as_object()
            .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case(name)));
        if answer.headers.contains_key(*name) && !listed {
            out.push(format!(
                "header {name} is sent but not documented for {status}"
            ));
        }
    }
    let content = response["content"].as_object();
    let Some(content) = content.filter(|c| !c.is_empty()) else {
        if !answer.body.is_empty() {
            out.push(format!(
                "documented without a body, but sent {}",
                body_text()
            ));
        }
        return out;
    };
    let Some(ctype) = answer.content_type.as_deref() else {
        out.push("no content type".into());
        return out;
    };
    let Some(media) = content.get(ctype) else {
        let documented: Vec<&String> = content.keys().collect();
        out.push(format!("content type {ctype} is not one of {documented:?}"));
        return out;
    };
    if ctype == "application/json" || ctype.ends_with("+json") {
        match serde_json::from_slice::<Value>(&answer.body) {
            Ok(body) => {
                if let Some(s) = media.get("schema") {
                    for e in schema::validate(doc, s, &body) {
                        out.push(format!("body breaks the schema: {e}"));
                    }
                }
            }
            Err(e) => out.push(format!("body is not JSON ({e}): {}", body_text())),
        }
    }
    out
}

/// Whether the document lets this case's caller in: it sends credentials, or the
/// operation's `security` (else the document's) is absent, empty, or has an empty
/// requirement `{}` among its alternatives.
fn anonymous_allowed(doc: &Value, case: &Case) -> bool {
    let op = &doc["paths"][case.path.as_str()][case.method.as_str()];
    let sends_key = case
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("authorization"));
    let security = op.get("security").or_else(|| doc.get("security"));
    sends_key
        || security
            .and_then(Value::as_array)
            .is_none_or(|alternatives| {
                alternatives.is_empty()
                    || alternatives
                        .iter()
                        .any(|r| r.as_object().is_some_and(|r| r.is_empty()))
            })
}

/// What the document must say whatever the gateway answers: errors are problem+json,
/// every `$ref` resolves, operation ids are unique, credentials are a security scheme
/// (never an `Authorization` header parameter).
fn static_problems(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if doc["openapi"]
        .as_str()
        .is_none_or(|v| !v.starts_with("3.1"))
    {
        out.push(format!("openapi is {}, not 3.1", doc["openapi"]));
    }
    let mut ids = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let at = format!("document: {} {path}", method.to_uppercase());
            match op["operationId"].as_str() {
                Some(id) if ids.contains(&id) => out.push(format!("{at}: operationId {id} twice")),
                Some(id) => ids.push(id),
                None => out.push(format!("{at}: no operationId")),
            }
            let declared_auth = op["parameters"].as_array().into_iter().flatten().any(|p| {
                p["in"] == "header"
                    && p["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case("authorization"))
            });
            if declared_auth {
                out.push(format!(
                    "{at}: Authorization is a header parameter, not a security scheme"
                ));
            }
            if op["responses"].get("405").is_none() {
                out.push(format!("{at}: 405 is not documented"));
            }
            for (status, response) in op["responses"].as_object().into_iter().flatten() {
                let error = status.starts_with('4') || status.starts_with('5');
                let problem = response["content"]["application/problem+json"]["schema"]["$ref"]
                    == "#/components/schemas/Problem";
                let problem_only = response["content"]
                    .as_object()
                    .is_some_and(|c| c.len() == 1);
                if error
                    && !(problem && problem_only)
                    && !(path == "/api/health" && status == "503")
                {
                    out.push(format!(
                        "{at}: {status} is not (only) a problem+json Problem"
                    ));
                }
            }
        }
    }
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"").skip(1) {
        let reference = piece.split('"').next().unwrap_or_default();
        if schema::resolve(doc, reference).is_none() {
            out.push(format!("document: $ref {reference} does not resolve"));
        }
    }
    out
}
