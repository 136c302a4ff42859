//! The gateway's edge, black-box: security headers on every kind of answer.

use reqwest::header::HeaderMap;
use reqwest::{Method, Response};
use serde_json::json;

use crate::helpers::{assert_problem, spawn_app, TestApp};

const API_POLICY: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .map(|v| v.to_str().expect("visible ASCII"))
}

/// The headers every answer carries, whatever it is.
fn assert_hardened(what: &str, headers: &HeaderMap) {
    assert_eq!(
        header(headers, "x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(header(headers, "x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(
        header(headers, "referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
}

/// An API answer: nothing may be loaded or cached from it.
fn assert_api_headers(what: &str, headers: &HeaderMap) {
    assert_hardened(what, headers);
    assert_eq!(
        header(headers, "content-security-policy"),
        Some(API_POLICY),
        "{what}"
    );
    assert_eq!(header(headers, "cache-control"), Some("no-store"), "{what}");
    assert_eq!(
        header(headers, "strict-transport-security"),
        None,
        "{what}: no TLS"
    );
}

async fn send(app: &TestApp, method: Method, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut req = app.client.request(method, app.url(path));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.expect("send")
}

#[tokio::test]
async fn every_kind_of_answer_carries_the_security_headers() {
    let app = spawn_app().await;

    let ok = send(&app, Method::GET, "/api/health/live", &[]).await;
    assert_eq!(ok.status().as_u16(), 200);
    assert_api_headers("200", ok.headers());

    let written = app
        .write("edge", &json!({"table": "users", "id": "e1", "data": {}}))
        .await;
    assert_eq!(written.status().as_u16(), 201);
    assert_api_headers("201", written.headers());

    let missing = send(&app, Method::GET, "/nowhere", &[]).await;
    assert_api_headers("404", missing.headers());
    let body = assert_problem(missing, 404).await;
    assert_eq!(body["type"], "urn:shardgate:problem:route-not-found");

    let bad = app
        .write("edge", &json!({"table": "secrets", "id": "x", "data": {}}))
        .await;
    assert_api_headers("422", bad.headers());
    assert_problem(bad, 422).await;

    let wrong_method = send(&app, Method::PUT, "/api/write", &[]).await;
    assert_api_headers("405", wrong_method.headers());
    assert_problem(wrong_method, 405).await;

    // The dashboard keeps its own policy (same origin only) and cache rule.
    let page = send(&app, Method::GET, "/dashboard", &[]).await;
    assert_eq!(page.status().as_u16(), 200);
    assert_hardened("dashboard", page.headers());
    let policy = header(page.headers(), "content-security-policy").unwrap();
    assert!(
        policy.starts_with("default-src 'self'; script-src 'self'"),
        "{policy}"
    );
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(header(page.headers(), "cache-control"), Some("no-cache"));

    // Swagger UI: its own files only, styles inline (its components set them), cacheable.
    let swagger = send(&app, Method::GET, "/swagger-ui/", &[]).await;
    assert_eq!(swagger.status().as_u16(), 200);
    assert_hardened("swagger", swagger.headers());
    let policy = header(swagger.headers(), "content-security-policy").unwrap();
    assert!(
        policy.starts_with("default-src 'self'; script-src 'self';"),
        "{policy}"
    );
    assert!(
        policy.contains("style-src 'self' 'unsafe-inline'"),
        "{policy}"
    );
    assert_eq!(header(swagger.headers(), "cache-control"), None);
}
