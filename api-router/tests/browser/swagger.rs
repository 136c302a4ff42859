//! Swagger UI under the gateway's Content Security Policy: the page renders every
//! operation from `/api-docs/openapi.json` and the browser reports no violation (its
//! scripts, styles, icons and the document fetch are all allowed; nothing else is).

use std::time::Duration;

use test_app::spawn_app;

use crate::chromium::{self, Browser};

#[tokio::test]
async fn swagger_ui_renders_every_operation_with_no_policy_violation() {
    let app = spawn_app().await;
    let mut browser = Browser::launch(&chromium::binary()).await;

    browser.open(&app.url("/swagger-ui/")).await;
    let state = browser
        .evaluate_until(
            r#"({
                operations: document.querySelectorAll(".opblock").length,
                title: document.querySelector(".info .title")?.textContent ?? null,
                styled: (() => {
                    const ui = document.querySelector(".swagger-ui");
                    return ui ? getComputedStyle(ui).fontFamily : null;
                })(),
                problems: window.pageProblems ?? ["the problem recorder did not run"],
            })"#,
            "the operations",
            Duration::from_secs(20),
            |s| s["operations"].as_u64().unwrap_or(0) >= 10,
        )
        .await;
    assert!(
        state["title"]
            .as_str()
            .is_some_and(|t| t.contains("Shardgate")),
        "{state:#}"
    );
    assert!(
        state["styled"]
            .as_str()
            .is_some_and(|f| f.contains("sans-serif")),
        "swagger-ui.css applied: {state:#}"
    );
    // Opening an operation renders its schema (React styles, the highlighter).
    browser
        .evaluate(r#"document.querySelector(".opblock-summary")?.click(), true"#)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let problems = browser.evaluate("window.pageProblems").await;
    assert_eq!(problems, serde_json::json!([]), "{state:#}");
    browser.close().await;
}
