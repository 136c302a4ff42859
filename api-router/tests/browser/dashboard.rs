//! The dashboard in headless Chromium, against a real gateway under traffic.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_router::startup::Application;
use serde::Deserialize;
use test_app::{spawn_app, spawn_app_with, TestApp};
use test_support::repo_root;

use crate::chromium::{self, Browser};
use crate::traffic::Traffic;

/// What the page says about itself: its own counters and every chart container.
#[derive(Debug, Deserialize)]
pub struct PageState {
    pub updates: u64,
    pub last_error: Option<String>,
    body_updates: u64,
    /// The error banner's text, when it shows.
    pub banner: Option<String>,
    /// Script errors and policy violations (see `chromium::RECORD_PAGE_PROBLEMS`).
    pub problems: Vec<String>,
    charts: Vec<ChartState>,
}

#[derive(Debug, Deserialize)]
struct ChartState {
    id: String,
    /// Non-empty points (or table rows) drawn, from `data-points`.
    points: u64,
    /// Whether uPlot put a canvas with a size in the container (tables: always true).
    drawn: bool,
}

impl PageState {
    fn chart(&self, id: &str) -> &ChartState {
        self.charts
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("no chart {id} in {self:#?}"))
    }

    fn all_charts_have_data(&self) -> bool {
        !self.charts.is_empty() && self.charts.iter().all(|c| c.points > 0 && c.drawn)
    }
}

const READ_PAGE_STATE: &str = r#"(() => {
    const banner = document.getElementById("banner");
    return {
        updates: window.dashboardState?.updates ?? 0,
        last_error: window.dashboardState?.lastError ?? null,
        body_updates: Number(document.body?.dataset.updates ?? 0),
        banner: banner && !banner.hidden ? banner.textContent : null,
        problems: window.pageProblems ?? ["the problem recorder did not run"],
        charts: [...document.querySelectorAll("[data-points]")].map((el) => {
            const canvas = el.querySelector("canvas");
            return {
                id: el.id,
                points: Number(el.dataset.points),
                drawn: el.tagName !== "DIV" || !el.classList.contains("chart")
                    || (canvas !== null && canvas.width > 0 && canvas.height > 0),
            };
        }),
    };
})()"#;

fn parse(value: &serde_json::Value) -> PageState {
    serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("unexpected page state {value}: {e}"))
}

/// Reads the page every 200 ms until `done` holds; panics with the last state after
/// `limit`.
pub async fn wait_for(
    browser: &mut Browser,
    what: &str,
    limit: Duration,
    done: impl Fn(&PageState) -> bool,
) -> PageState {
    let value = browser
        .evaluate_until(READ_PAGE_STATE, what, limit, |v| done(&parse(v)))
        .await;
    parse(&value)
}

/// Where to save a screenshot: `SHARDGATE_SCREENSHOT=1` means `docs/dashboard.png`,
/// any other value is a path. Unset (CI): no file is written.
fn screenshot_path() -> Option<PathBuf> {
    match std::env::var("SHARDGATE_SCREENSHOT").ok()?.as_str() {
        "" | "0" => None,
        "1" => Some(repo_root().join("docs/dashboard.png")),
        path => Some(PathBuf::from(path)),
    }
}

async fn spawn_cached_app() -> TestApp {
    spawn_app_with(|s| {
        s.cluster.cache.enabled = true;
        s.cluster.cache.prefix = format!("sgtest-{}", uuid::Uuid::new_v4().simple());
    })
    .await
}

#[tokio::test]
async fn every_chart_draws_live_traffic() {
    // Arrange
    let chromium = chromium::binary();
    let app = Arc::new(spawn_cached_app().await);
    let traffic = Traffic::start(app.clone()).await;
    let mut browser = Browser::launch(&chromium).await;

    // Act
    browser.open(&app.url("/dashboard")).await;
    let screenshot = screenshot_path();
    // A screenshot for people gets a longer history than the check needs.
    let updates = if screenshot.is_some() { 12 } else { 3 };
    let state = wait_for(
        &mut browser,
        "data in every chart",
        Duration::from_secs(25),
        |s| s.updates >= updates && s.all_charts_have_data(),
    )
    .await;
    if let Some(path) = &screenshot {
        browser.screenshot(path).await;
    }
    browser.close().await;
    let counts = traffic.stop().await;

    // Assert
    let ids: Vec<&str> = state.charts.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "chart-throughput",
            "chart-latency",
            "chart-errors",
            "chart-shards",
            "chart-replica-lag",
            "chart-cache",
            "heatmap",
            "servers",
            "gateways",
            "slowest",
            "errors",
            "streams",
        ]
    );
    assert_eq!(
        state.body_updates, state.updates,
        "<body data-updates> follows the state"
    );
    assert_eq!(state.last_error, None);
    assert_eq!(state.banner, None);
    assert_eq!(
        state.problems,
        Vec::<String>::new(),
        "script errors or CSP violations"
    );
    let servers = state.chart("servers");
    let expected_servers: usize = app
        .settings
        .cluster
        .shards
        .iter()
        .map(|s| 1 + s.replicas.len())
        .sum();
    assert_eq!(
        servers.points, expected_servers as u64,
        "one table row per server"
    );
    assert!(counts.ok > 0, "traffic got no 2xx: {counts:?}");
    assert!(counts.client_errors > 0, "traffic got no 4xx: {counts:?}");
}

#[tokio::test]
async fn a_gateway_restart_shows_a_banner_and_polling_resumes() {
    // Arrange
    let chromium = chromium::binary();
    let app = spawn_app().await;
    let mut settings = app.settings.clone();
    settings.server.listen = format!("127.0.0.1:{}", app.port);
    let mut browser = Browser::launch(&chromium).await;
    browser.open(&app.url("/dashboard")).await;
    wait_for(&mut browser, "two updates", Duration::from_secs(15), |s| {
        s.updates >= 2
    })
    .await;

    // Act: the gateway goes away...
    drop(app);
    let down = wait_for(&mut browser, "the banner", Duration::from_secs(15), |s| {
        s.banner.is_some()
    })
    .await;
    // ...and comes back on the same port.
    let restarted = build_with_retry(settings).await;
    let handle = restarted.handle();
    tokio::spawn(restarted.run_until_stopped());
    let up = wait_for(
        &mut browser,
        "updates after the restart",
        Duration::from_secs(15),
        |s| s.banner.is_none() && s.updates >= down.updates + 2,
    )
    .await;
    browser.close().await;
    handle.stop(false).await;

    // Assert
    assert!(
        down.last_error.is_some(),
        "a failed poll is recorded: {down:#?}"
    );
    let banner = down.banner.as_deref().unwrap_or_default();
    assert!(banner.contains("Cannot reach the gateway"), "{banner}");
    // The outage is a gap in the history; the samples after it are drawn again.
    let throughput = |s: &PageState| s.chart("chart-throughput").points;
    assert!(
        throughput(&up) > throughput(&down),
        "new samples drawn after the restart: {down:#?} then {up:#?}"
    );
}

/// Binds the port the stopped gateway held; it may take a moment to be released.
async fn build_with_retry(settings: api_router::server::settings::Settings) -> Application {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Application::build(settings.clone()).await {
            Ok(app) => return app,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!(
                "cannot restart the gateway on {}: {e}",
                settings.server.listen
            ),
        }
    }
}
