//! The dashboard's moves panel: hidden while no move was ever recorded, then a row per
//! move with its phase and progress, fed by the `/api/shards` poll; a stuck move (no
//! mover, stopped past `moves.stuck_after_secs`) is marked stuck with its warning.

use std::time::Duration;

use serde_json::Value;
use test_app::{spawn_app, spawn_app_with};

use crate::chromium::{self, Browser};

const READ_MOVES: &str = r##"(() => {
    const panel = document.getElementById("moves");
    if (!panel) return { updates: 0, rows: [] }; // the page is still loading
    return {
        updates: window.dashboardState?.updates ?? 0,
        hidden: panel.closest("section").hidden,
        count: Number(panel.dataset.moves),
        rows: [...document.querySelectorAll("#moves-body tr")].map((tr) => ({
            move: Number(tr.dataset.move),
            phase: tr.dataset.phase,
            stuck: tr.dataset.stuck,
            cells: [...tr.cells].map((td) => td.textContent),
            bar: tr.querySelector("progress")?.value ?? null,
        })),
        active: document.getElementById("moves-active").textContent,
        problems: window.pageProblems ?? ["the problem recorder did not run"],
    };
})()"##;

async fn wait_for(browser: &mut Browser, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let limit = Duration::from_secs(10);
    browser.evaluate_until(READ_MOVES, what, limit, done).await
}

#[tokio::test]
async fn the_moves_panel_shows_a_move_and_its_progress() {
    // Arrange
    let chromium = chromium::binary();
    let app = spawn_app().await;
    let mut browser = Browser::launch(&chromium).await;
    browser.open(&app.url("/dashboard")).await;
    let empty = wait_for(&mut browser, "two polls", |s| {
        s["updates"].as_u64() >= Some(2)
    })
    .await;

    // Act: a move of 4 slots from shard 0 to shard 1, a quarter of its rows copied.
    let mv = app.record_move(4, 400, 100, 0).await;
    let shown = wait_for(&mut browser, "the move", |s| {
        s["rows"][0]["bar"].as_f64() == Some(100.0)
    })
    .await;
    browser.close().await;

    // Assert
    assert_eq!(empty["hidden"], true, "no move, no panel: {empty:#}");
    assert_eq!(empty["count"], 0);
    assert_eq!(shown["hidden"], false);
    assert_eq!(shown["count"], 1);
    let row = &shown["rows"][0];
    assert_eq!(row["move"], mv.id);
    assert_eq!(row["phase"], "capturing");
    let cells: Vec<&str> = row["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(cells[2], "0 → 1", "{cells:?}");
    assert!(cells[4].ends_with("100 / 400"), "{cells:?}");
    assert_eq!(
        shown["problems"],
        serde_json::json!([]),
        "script errors or CSP violations"
    );
}

#[tokio::test]
async fn a_stuck_move_is_marked_stuck_with_what_to_do() {
    // Arrange: every stopped move counts as stuck at once.
    let chromium = chromium::binary();
    let app = spawn_app_with(|s| s.cluster.moves.stuck_after_secs = 0).await;
    let mut browser = Browser::launch(&chromium).await;
    browser.open(&app.url("/dashboard")).await;

    // Act: a move recorded with no mover running it (as one left by a dead mover).
    let mv = app.record_move(4, 400, 100, 0).await;
    let shown = wait_for(&mut browser, "the stuck move", |s| {
        s["rows"][0]["stuck"] == "stopped"
    })
    .await;
    browser.close().await;

    // Assert
    let row = &shown["rows"][0];
    assert_eq!(row["move"], mv.id);
    let cells: Vec<&str> = row["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(cells[3], "capturing · stuck", "{cells:?}");
    assert!(
        cells[8].contains(&format!("`shard-admin moves resume {}`", mv.id)),
        "the warning says what to do: {cells:?}"
    );
    assert!(
        shown["active"]
            .as_str()
            .unwrap()
            .starts_with("1 active, 1 stuck"),
        "{shown:#}"
    );
    assert_eq!(shown["problems"], serde_json::json!([]));
}
