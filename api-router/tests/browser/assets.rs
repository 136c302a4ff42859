//! `/dashboard` and its assets: all from the binary, none from another origin.

use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;
use test_app::{assert_problem, spawn_app};

/// Every value that follows one of `openers` up to the next `"`, in order: attribute
/// values (`src="`) or module specifiers (`from "`).
fn quoted_after(text: &str, openers: &[&str]) -> Vec<String> {
    let mut values = Vec::new();
    for opener in openers {
        let mut rest = text;
        while let Some(start) = rest.find(opener) {
            rest = &rest[start + opener.len()..];
            let end = rest.find('"').expect("quoted value is closed");
            values.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    values
}

/// The paths a page references with `src` and `href`.
fn referenced_paths(html: &str) -> Vec<String> {
    quoted_after(html, &["src=\"", "href=\""])
}

/// The paths of the modules one of our scripts imports (`from "./name.js"`).
fn imported_paths(script: &str) -> Vec<String> {
    quoted_after(script, &["from \""])
        .into_iter()
        .map(|spec| match spec.strip_prefix("./") {
            Some(name) => format!("/dashboard/{name}"),
            None => panic!("import {spec:?} is not a sibling module (\"./name.js\")"),
        })
        .collect()
}

fn expected_content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    }
}

fn header(res: &reqwest::Response, name: reqwest::header::HeaderName) -> String {
    res.headers()
        .get(&name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_owned()
}

#[tokio::test]
async fn the_page_references_only_its_own_embedded_assets() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let res = app.client.get(app.url("/dashboard")).send().await.unwrap();

    // Assert
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, CONTENT_TYPE), "text/html; charset=utf-8");
    assert!(header(&res, CONTENT_SECURITY_POLICY).starts_with("default-src 'self'"));
    let html = res.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page names another origin:\n{html}"
    );
    let mut paths = referenced_paths(&html);
    for expected in ["/dashboard/uPlot.iife.min.js", "/dashboard/dashboard.js"] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected} not in {paths:?}"
        );
    }
    // Each referenced file, then each module our scripts import, until none is new.
    let mut next = 0;
    while let Some(path) = paths.get(next).cloned() {
        next += 1;
        assert!(
            path.starts_with("/dashboard/"),
            "{path} is not an embedded asset"
        );
        let res = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(
            header(&res, CONTENT_TYPE),
            expected_content_type(&path),
            "{path}"
        );
        assert_eq!(header(&res, CACHE_CONTROL), "no-cache", "{path}");
        let body = res.text().await.unwrap();
        assert!(!body.is_empty(), "{path} is empty");
        if path.contains("uPlot") {
            continue; // the vendored library names its home page and the SVG namespace
        }
        assert!(!body.contains("://"), "{path} names another origin");
        if path.ends_with(".js") {
            for import in imported_paths(&body) {
                if !paths.contains(&import) {
                    paths.push(import);
                }
            }
        }
    }
    for expected in [
        "/dashboard/charts.js",
        "/dashboard/format.js",
        "/dashboard/tables.js",
        "/dashboard/events.js",
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected} not in {paths:?}"
        );
    }
}

#[tokio::test]
async fn an_unchanged_asset_answers_304_and_an_unknown_one_404() {
    // Arrange
    let app = spawn_app().await;
    let first = app
        .client
        .get(app.url("/dashboard/dashboard.js"))
        .send()
        .await
        .unwrap();
    let etag = header(&first, ETAG);

    // Act
    let again = app
        .client
        .get(app.url("/dashboard/dashboard.js"))
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    let unknown = app
        .client
        .get(app.url("/dashboard/secrets.toml"))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&again, ETAG), etag);
    assert!(again.bytes().await.unwrap().is_empty());
    assert_problem(unknown, 404).await;
}
