//! The dashboard's failover events: a failover of shard 1 recorded in the test's own
//! metadata database (as the failover watcher records one) shows as an event line,
//! "shard-1 failed over to ... in 4.2 s, term 2", with the map version and the live
//! gateways in the headline. `SHARDGATE_FAILOVER_SCREENSHOT=PATH` saves the page.

use std::time::Duration;

use control_plane::failover::record;
use serde_json::Value;
use shard_manager::ShardId;
use test_app::spawn_app_with;

use crate::chromium::{self, Browser};

const READ_EVENTS: &str = r##"(() => {
    const panel = document.getElementById("failovers");
    if (!panel) return { updates: 0, lines: [] }; // the page is still loading
    return {
        updates: window.dashboardState?.updates ?? 0,
        count: Number(panel.dataset.events),
        lines: [...document.querySelectorAll("#failovers-body li")].map((li) => ({
            line: li.querySelector(".line")?.textContent ?? null,
            when: li.querySelector("time")?.textContent ?? null,
            detail: li.querySelector(".why")?.textContent ?? null,
            text: li.textContent,
        })),
        map: document.getElementById("map-headline").textContent,
        gateways: document.getElementById("gateways-live").textContent,
        problems: window.pageProblems ?? ["the problem recorder did not run"],
    };
})()"##;

async fn wait_for(browser: &mut Browser, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let limit = Duration::from_secs(10);
    browser.evaluate_until(READ_EVENTS, what, limit, done).await
}

#[tokio::test]
async fn a_failover_shows_as_an_event_line_with_the_map_version_and_gateways() {
    // Arrange: the watcher off (the map names the real replica as primary afterwards).
    let chromium = chromium::binary();
    let app = spawn_app_with(|s| s.cluster.failover.watch = false).await;
    let (primary, replica) = (app.primary(1), app.replica(1));
    let mut browser = Browser::launch(&chromium).await;
    browser.open(&app.url("/dashboard")).await;
    let before = wait_for(&mut browser, "two polls and a heartbeat", |s| {
        s["updates"].as_u64() >= Some(2) && s["gateways"] == "1"
    })
    .await;

    // Act
    record::promote(&app.settings.cluster, ShardId(1), &primary, &replica, 4234)
        .await
        .expect("record the failover")
        .expect("the map still named the primary");
    let after = wait_for(&mut browser, "the event line", |s| s["count"] == 1).await;
    if let Ok(path) = std::env::var("SHARDGATE_FAILOVER_SCREENSHOT") {
        browser.screenshot(std::path::Path::new(&path)).await;
    }
    browser.close().await;

    // Assert
    assert_eq!(before["count"], 0);
    assert_eq!(before["map"], "v1");
    let none = before["lines"][0]["text"].as_str().unwrap();
    assert!(none.starts_with("No failover or switchover"), "{before:#}");
    let event = &after["lines"][0];
    assert_eq!(
        event["line"],
        format!("shard-1 failed over to {replica} in 4.2 s, term 2")
    );
    assert_eq!(event["detail"], format!("from {primary} · map v2"));
    let when = event["when"].as_str().unwrap();
    assert!(
        when.len() == 23 && when.ends_with(" UTC"),
        "YYYY-MM-DD HH:MM:SS UTC: {when}"
    );
    assert_eq!(after["map"], "v2");
    assert_eq!(after["gateways"], "1");
    assert_eq!(
        after["problems"],
        serde_json::json!([]),
        "script errors or CSP violations"
    );
}
