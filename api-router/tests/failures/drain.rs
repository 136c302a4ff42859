//! SIGTERM with `server.drain_ms` set, on the real binary: for the drain time the
//! gateway answers 503 on `/api/health/ready` (what a load balancer checks) while it
//! still serves requests, new connections included; then it stops accepting and exits
//! 0. A second signal during the drain stops it at once.

use std::time::Duration;

use reqwest::StatusCode;
use test_app::gateway_process::Process;
use test_app::{prepare_database, test_settings};
use test_support::outage::{serial, DropDatabase};

use crate::support::{keys_on, Gateway};

/// Long enough that, on a loaded machine, one health request (bounded at 2 s) still fits
/// in the half of it that readiness is given to turn 503 (at 3 s it may not).
const DRAIN: Duration = Duration::from_millis(5000);

/// `path`'s status on a new connection, or None when nothing answers within 2 s (well
/// inside the 5 s drain, with room for a loaded machine).
async fn status_on_new_connection(port: u16, path: &str) -> Option<StatusCode> {
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_millis(2000))
        .build()
        .unwrap();
    let res = fresh.get(format!("http://127.0.0.1:{port}{path}")).send();
    res.await.ok().map(|r| r.status())
}

/// `/api/health/ready` once it turned 503, or as it last answered after half the drain
/// window: not ready soon after the signal (well inside the window; a loaded machine may
/// take a few hundred ms to deliver and handle it).
async fn readiness_after_signal(port: u16) -> Option<StatusCode> {
    let deadline = std::time::Instant::now() + DRAIN / 2;
    let mut ready = status_on_new_connection(port, "/api/health/ready").await;
    while ready != Some(StatusCode::SERVICE_UNAVAILABLE) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        ready = status_on_new_connection(port, "/api/health/ready").await;
    }
    ready
}

async fn draining_gateway() -> (Process, Vec<String>, DropDatabase) {
    let mut settings = test_settings();
    prepare_database(&mut settings).await;
    let db = DropDatabase(settings.cluster.database.dbname.clone());
    let drain_ms = DRAIN.as_millis().to_string();
    let env = [("SHARDGATE__SERVER__DRAIN_MS", drain_ms.as_str())];
    let process = Process::start(&db.0, &env).await;
    let port = process.port;
    let ready = status_on_new_connection(port, "/api/health/ready").await;
    assert_eq!(ready, Some(StatusCode::OK), "{}", process.output());
    (process, keys_on(&settings, 0, 3), db)
}

#[tokio::test]
async fn sigterm_drains_first_not_ready_but_serving_then_exits() {
    let _serial = serial().await;
    let (mut process, keys, _db) = draining_gateway().await;
    let port = process.port;

    process.terminate();
    let ready = readiness_after_signal(port).await;
    let output = process.output();
    assert_eq!(
        ready,
        Some(StatusCode::SERVICE_UNAVAILABLE),
        "draining:\n{output}"
    );
    let live = status_on_new_connection(port, "/api/health/live").await;
    assert_eq!(live, Some(StatusCode::OK), "alive while draining");
    for key in &keys {
        let res = Gateway::at(port).write(key, key).await;
        assert_eq!(res.status(), StatusCode::CREATED, "a write while draining");
    }

    let (exit, after) = process.exit_within(DRAIN + Duration::from_secs(10)).await;
    assert!(exit.success(), "exit {exit}:\n{}", process.output());
    assert!(
        after >= DRAIN,
        "exited {after:?} after SIGTERM, before the drain ended"
    );
    let output = process.output();
    assert!(output.contains("draining"), "{output}");
    assert!(output.contains("gateway stopped"), "{output}");
    eprintln!("drained and exited {after:?} after SIGTERM");
}

#[tokio::test]
async fn a_second_signal_stops_without_waiting_for_the_drain() {
    let _serial = serial().await;
    let (mut process, _keys, _db) = draining_gateway().await;
    let port = process.port;

    process.terminate();
    let ready = readiness_after_signal(port).await;
    let output = process.output();
    assert_eq!(
        ready,
        Some(StatusCode::SERVICE_UNAVAILABLE),
        "draining:\n{output}"
    );
    process.terminate();
    let (exit, after) = process.exit_within(DRAIN).await;
    assert!(exit.success(), "exit {exit}:\n{}", process.output());
    assert!(after < DRAIN, "exited {after:?} after the second signal");
    assert!(
        process.output().contains("second signal"),
        "{}",
        process.output()
    );
}
