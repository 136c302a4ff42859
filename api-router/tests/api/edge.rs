//! The gateway's edge, black-box: security headers on every kind of answer, CORS off
//! by default and answering preflights once configured (a refused one is a problem
//! naming the origin), and HTTPS with a certificate made for the test.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, Response};
use serde_json::json;
use test_app::{assert_problem, spawn_app, spawn_app_with, TestApp};

const ALLOWED: &str = "https://app.example.com";
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

#[tokio::test]
async fn without_cors_settings_no_origin_is_granted_anything() {
    let app = spawn_app().await;
    let res = send(
        &app,
        Method::GET,
        "/api/health/live",
        &[("origin", ALLOWED)],
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(header(res.headers(), "access-control-allow-origin"), None);

    // A preflight is a request like any other: OPTIONS is not a method of the route.
    let preflight = send(
        &app,
        Method::OPTIONS,
        "/api/write",
        &[
            ("origin", ALLOWED),
            ("access-control-request-method", "POST"),
        ],
    )
    .await;
    assert_eq!(
        header(preflight.headers(), "access-control-allow-origin"),
        None
    );
    assert_eq!(
        header(preflight.headers(), "access-control-allow-methods"),
        None
    );
    assert_problem(preflight, 405).await;
}

async fn cors_app() -> TestApp {
    spawn_app_with(|s| {
        s.server.cors.allowed_origins = vec![ALLOWED.into(), "http://localhost:3000".into()];
        s.server.cors.max_age_secs = 120;
    })
    .await
}

fn preflight_headers<'a>(origin: &'a str, headers: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("origin", origin),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", headers),
    ]
}

#[tokio::test]
async fn a_configured_origin_gets_its_preflight_and_reads_the_gateways_headers() {
    let app = cors_app().await;
    let asked = "content-type,x-shard-key,authorization,idempotency-key";
    let res = send(
        &app,
        Method::OPTIONS,
        "/api/write",
        &preflight_headers(ALLOWED, asked),
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    let h = res.headers();
    assert_eq!(header(h, "access-control-allow-origin"), Some(ALLOWED));
    assert_eq!(header(h, "access-control-max-age"), Some("120"));
    assert_eq!(header(h, "access-control-allow-credentials"), None);
    let methods = header(h, "access-control-allow-methods").unwrap();
    for method in ["GET", "POST", "DELETE"] {
        assert!(methods.contains(method), "{methods}");
    }
    let allowed = header(h, "access-control-allow-headers").unwrap();
    for name in [
        "content-type",
        "x-shard-key",
        "authorization",
        "idempotency-key",
    ] {
        assert!(allowed.contains(name), "{name} not in {allowed}");
    }
    assert_hardened("preflight", h);

    // The write itself: the page may read the LSN and the request id.
    let written = app
        .post_json_request(
            "/api/write",
            Some("cors"),
            &json!({"table": "users", "id": "c1", "data": {}}),
        )
        .header("origin", ALLOWED)
        .send()
        .await
        .unwrap();
    assert_eq!(written.status().as_u16(), 201);
    let h = written.headers();
    assert_eq!(header(h, "access-control-allow-origin"), Some(ALLOWED));
    let exposed = header(h, "access-control-expose-headers").unwrap();
    for name in [
        "x-shard-lsn",
        "x-request-id",
        "idempotency-replayed",
        "retry-after",
    ] {
        assert!(exposed.contains(name), "{name} not in {exposed}");
    }
    let vary = header(h, "vary").unwrap_or_default().to_ascii_lowercase();
    assert!(
        vary.contains("origin"),
        "a cache keeps answers per origin: {h:?}"
    );
}

#[tokio::test]
async fn a_preflight_the_policy_does_not_allow_is_a_problem_naming_it() {
    let app = cors_app().await;
    let evil = "https://evil.example";
    let res = send(
        &app,
        Method::OPTIONS,
        "/api/write",
        &preflight_headers(evil, "content-type"),
    )
    .await;
    assert_eq!(header(res.headers(), "access-control-allow-origin"), None);
    assert_api_headers("refused preflight", res.headers());
    let body = assert_problem(res, 403).await;
    assert_eq!(body["type"], "urn:shardgate:problem:cors-refused");
    assert_eq!(
        body["detail"],
        "the origin \"https://evil.example\" may not call this gateway from a browser; it is not in server.cors.allowed_origins"
    );

    let res = send(
        &app,
        Method::OPTIONS,
        "/api/write",
        &preflight_headers(ALLOWED, "x-secret"),
    )
    .await;
    let body = assert_problem(res, 403).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("a requested header (x-secret) is not allowed cross-origin"),
        "{detail}"
    );

    // A simple request from elsewhere is served, but without the grant a browser needs.
    let res = send(&app, Method::GET, "/api/health/live", &[("origin", evil)]).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(header(res.headers(), "access-control-allow-origin"), None);
}

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM files.
fn certificate() -> (PathBuf, PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("sg-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let pair =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, pair.cert.pem()).unwrap();
    std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
    (cert, key, pair.cert.pem())
}

#[tokio::test]
async fn with_a_certificate_the_gateway_speaks_https_only_and_sends_hsts() {
    let (cert, key, pem) = certificate();
    let app = spawn_app_with(|s| {
        s.server.tls = Some(api_router::server::tls::TlsSettings {
            cert_path: cert.clone(),
            key_path: key.clone(),
            hsts_max_age_secs: 86_400,
        });
    })
    .await;
    let https = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .resolve("localhost", ([127, 0, 0, 1], app.port).into())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let res = https
        .get(format!("https://localhost:{}/api/health/live", app.port))
        .send()
        .await
        .expect("an HTTPS request the test's certificate verifies");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        header(res.headers(), "strict-transport-security"),
        Some("max-age=86400")
    );
    assert_hardened("https", res.headers());
    assert_eq!(res.text().await.unwrap(), r#"{"status":"ok"}"#);

    // The same port does not speak plain HTTP.
    let plain = app.client.get(app.url("/api/health/live")).send().await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");

    // A client that does not trust the certificate is refused by its own check.
    let untrusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .resolve("localhost", ([127, 0, 0, 1], app.port).into())
        .build()
        .unwrap();
    let err = untrusting
        .get(format!("https://localhost:{}/api/health/live", app.port))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    let _ = std::fs::remove_dir_all(cert.parent().unwrap());
}

#[tokio::test]
async fn edge_settings_that_cannot_work_stop_the_start_saying_why() {
    let (cert, _, _) = certificate();
    let missing = cert.with_file_name("missing-key.pem");
    let mut settings = test_app::test_settings();
    settings.server.tls = Some(api_router::server::tls::TlsSettings {
        cert_path: cert.clone(),
        key_path: missing.clone(),
        hsts_max_age_secs: 0,
    });
    let err = match api_router::startup::Application::build(settings).await {
        Ok(_) => panic!("started without its key file"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.starts_with(&format!(
            "refusing to start: cannot read the TLS key file {}: ",
            missing.display()
        )),
        "{err}"
    );

    let mut settings = test_app::test_settings();
    settings.server.cors.allowed_origins = vec!["*".into()];
    settings.server.cors.allow_credentials = true;
    let err = match api_router::startup::Application::build(settings).await {
        Ok(_) => panic!("started with a wildcard and credentials"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        err,
        "invalid configuration: server.cors: allowed_origins = [\"*\"] cannot go with allow_credentials = true (browsers refuse that answer); list the origins instead"
    );
    let _ = std::fs::remove_dir_all(cert.parent().unwrap());
}
