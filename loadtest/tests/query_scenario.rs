//! The `query` scenario against the real gateway binary: the prefill writes the users,
//! then every `POST /api/query` (a tier's users above a floor, by value, 20 a page)
//! answers 200, and the summary counts them on both sides: goose's and the gateway's
//! own analytics for `/api/query`.
//!
//! Run against the topology `setup.sh` started:
//! `eval "$(./setup.sh env)" && cargo test -p loadtest --test query_scenario`.

use std::time::Duration;

use test_app::wrk::Bench;

/// The numbers after `label` on the first line of the load tester's own summary (after
/// goose's report) that starts with it.
fn row(stdout: &str, label: &str) -> Vec<f64> {
    let summary = stdout
        .split("=== Shardgate loadtest summary ===")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary in:\n{stdout}"));
    let line = summary
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} row in:\n{stdout}"));
    line[label.len()..]
        .split_whitespace()
        .map(|w| w.parse().unwrap_or_else(|_| panic!("{line}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_scenario_pages_every_shard_without_a_failure() {
    let bench = Bench::start_with(&[]).await;
    let host = bench.url("");
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args([
            "--host",
            &host,
            "--scenario",
            "query",
            "--keys",
            "300",
            "--users",
            "2",
            "--increase-rate",
            "2",
            "--run-time",
            "3s",
        ])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("loadtest finished within 180 s")
        .expect("loadtest started");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "loadtest failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // requests, fails, req/s, p50, p90, p99, max
    let client = row(&stdout, "POST query");
    assert!(client[0] >= 20.0, "too few queries sent: {stdout}");
    assert_eq!(client[1], 0.0, "a query failed: {stdout}");
    // The gateway counted them under its own route (requests, p50, p90, p99, max; its
    // window is the last 5 s, so it may miss the first of them).
    let server = row(&stdout, "endpoint /api/query");
    assert!(server[0] >= client[0] / 2.0, "{stdout}");
}
