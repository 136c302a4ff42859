//! The load tester's trace ids against the real gateway binary: a gateway started with
//! the standard `OTEL_*` variables (its collector down: spans are dropped, answers go
//! on) answers every sampled request with a `traceresponse` under the caller's trace, so
//! the summary lists the slowest requests with trace ids the gateway traced; with
//! `--trace-ratio 0` nothing asks for sampling and the summary says the gateway traced
//! none.
//!
//! Run against the topology `setup.sh` started:
//! `eval "$(./setup.sh env)" && cargo test -p loadtest --test trace_ids`.

use std::process::Output;
use std::time::Duration;

use test_app::wrk::Bench;

/// Runs the `loadtest` binary against `host` with the `live` scenario for 3 s and
/// `extra` arguments, bounded.
async fn loadtest(host: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "--host",
        host,
        "--scenario",
        "live",
        "--users",
        "2",
        "--increase-rate",
        "2",
        "--run-time",
        "3s",
        "--trace-slowest",
        "5",
    ];
    args.extend_from_slice(extra);
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(&args)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("loadtest finished within 120 s")
        .expect("loadtest started");
    assert!(
        output.status.success(),
        "loadtest failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The summary's slowest-requests rows: (status, trace id, traced).
fn slowest_rows(stdout: &str) -> Vec<(u16, String, bool)> {
    let section = stdout
        .split("slowest requests (trace ids")
        .nth(1)
        .unwrap_or_else(|| panic!("no slowest-requests section in:\n{stdout}"));
    section
        .lines()
        .skip(2)
        .map_while(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // ms, request, status, trace id, traced
            let id = cols.get(3)?;
            (id.len() == 32).then(|| {
                (
                    cols[2].parse().expect("a status"),
                    (*id).to_owned(),
                    cols[4] == "yes",
                )
            })
        })
        .collect()
}

/// "traced N of M requests" (or "traced none of the M requests"): (N, M).
fn traced_of(stdout: &str) -> (u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.contains("the gateway traced"))
        .unwrap_or_else(|| panic!("no traced line in:\n{stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "traced").unwrap();
    let number = |w: &str| w.parse::<u64>().unwrap_or_else(|_| panic!("{line}"));
    match words[at + 1] {
        "none" => (0, number(words[at + 4])),
        n => (number(n), number(words[at + 3])),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slowest_requests_are_listed_under_trace_ids_the_gateway_traced() {
    let bench = Bench::start_with(&[
        // Nothing listens there: export fails, spans are dropped, requests are served.
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1"),
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "200"),
    ])
    .await;
    let host = bench.url("");

    // Every traceparent asks for sampling: the gateway's parent-based sampler follows
    // the caller (its own ratio, 0, would sample nothing).
    let output = loadtest(&host, &[]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}");
    let rows = slowest_rows(&stdout);
    assert_eq!(rows.len(), 5, "{stdout}");
    assert!(
        rows.iter()
            .all(|(status, _, traced)| *status == 200 && *traced),
        "{stdout}"
    );
    let mut ids: Vec<&String> = rows.iter().map(|(_, id, _)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "one trace per request: {stdout}");
    let (traced, sent) = traced_of(&stdout);
    assert!(sent > 20, "{stdout}");
    assert_eq!(traced, sent, "every request traced: {stdout}");

    // None asks for sampling: the gateway follows the caller again.
    let output = loadtest(&host, &["--trace-ratio", "0"]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (traced, sent) = traced_of(&stdout);
    assert!(sent > 20, "{stdout}");
    assert_eq!(traced, 0, "{stdout}");
    assert!(
        slowest_rows(&stdout).iter().all(|(_, _, traced)| !traced),
        "{stdout}"
    );
}
