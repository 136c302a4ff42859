//! SIGTERM drains the real binary.
//!
//! `sigterm_lets_the_request_in_flight_finish`: the `api-router` binary runs as a child
//! process. A write blocked on a row lock (held from outside) is in flight when the
//! process gets SIGTERM. From then on new requests fail within a second; once the lock
//! is released the blocked write still answers 200, and the process exits with status
//! 0 within its 10 s shutdown timeout.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};
use reqwest::StatusCode;
use serde_json::Value;
use shard_manager::server::connection_url;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{self, prepare_database, test_settings};
use crate::support::{blocking, keys_on, serial, until, Gateway, RowLock};

const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// The binary, started with `--listen 127.0.0.1:0`; killed on drop if still running.
struct Process {
    child: Child,
    port: u16,
    /// Everything it printed, for failure messages.
    output: Arc<Mutex<Vec<String>>>,
}

impl Process {
    async fn start(dbname: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_api-router"))
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(helpers::repo_root())
            .env("SHARDGATE__DATABASE__DBNAME", dbname)
            .env("SHARDGATE__SERVER__SHUTDOWN_TIMEOUT_SECS", "10")
            .env("SHARDGATE__SERVER__WORKERS", "2")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start api-router");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = tokio::sync::oneshot::channel();
        let mut port_tx = Some(port_tx);
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = output.clone();
        // Drains both pipes for the process's whole life, so it never blocks on them.
        tokio::spawn(async move {
            loop {
                let line = tokio::select! {
                    Ok(Some(line)) = stdout.next_line() => line,
                    Ok(Some(line)) = stderr.next_line() => line,
                    else => break,
                };
                let line = strip_ansi(&line);
                if let Some(port) = listening_port(&line) {
                    port_tx.take().map(|tx| tx.send(port));
                }
                sink.lock().unwrap().push(line);
            }
        });
        let port = tokio::time::timeout(Duration::from_secs(10), port_rx)
            .await
            .unwrap_or_else(|_| panic!("no `gateway listening` line: {:?}", output.lock()))
            .expect("api-router exited before listening");
        Self {
            child,
            port,
            output,
        }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }
}

/// Removes ANSI colour sequences (`ESC [ ... letter`), which tracing's fmt writes.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The `port=NNNN` field of the `gateway listening` log line.
fn listening_port(line: &str) -> Option<u16> {
    if !line.contains("gateway listening") {
        return None;
    }
    line.split_whitespace()
        .find_map(|field| field.strip_prefix("port="))
        .and_then(|p| p.parse().ok())
}

#[test]
fn the_port_is_read_from_coloured_and_plain_logs() {
    let coloured = "\u{1b}[2m2026-01-01T00:00:00Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m \
        \u{1b}[2mapi_router::startup\u{1b}[0m\u{1b}[2m:\u{1b}[0m gateway listening \
        \u{1b}[3mport\u{1b}[0m\u{1b}[2m=\u{1b}[0m41234 \u{1b}[3mlisten\u{1b}[0m\u{1b}[2m=\u{1b}[0m127.0.0.1:0";
    assert_eq!(listening_port(&strip_ansi(coloured)), Some(41234));
    let plain = "2026-01-01T00:00:00Z INFO api_router::startup: gateway listening port=80 listen=x";
    assert_eq!(listening_port(plain), Some(80));
    assert_eq!(listening_port("server down port=1"), None);
}

/// Writes blocked on a row lock in the test database, as `pg_stat_activity` shows them.
fn waiting_on_locks(url: &str, dbname: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Waiting {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = PgConnection::establish(url).expect("connect");
    diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 \
         AND application_name = 'shardgate' AND wait_event_type = 'Lock'",
    )
    .bind::<diesel::sql_types::Text, _>(dbname)
    .get_result::<Waiting>(&mut conn)
    .expect("pg_stat_activity")
    .n
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish() {
    let _serial = serial().await;
    let settings = test_settings();
    prepare_database(&settings).await;
    let dbname = settings.cluster.database.dbname.clone();
    let mut process = Process::start(&dbname).await;
    let gateway = Gateway::at(process.port);
    let key = keys_on(&settings, 0, 1).remove(0);
    let res = gateway.write(&key, &key).await;
    assert_eq!(res.status(), StatusCode::CREATED, "{}", process.output());
    let url = connection_url(
        &settings.cluster.database,
        &settings.cluster.shards[0].primary,
    );

    let lock = RowLock::hold(PgConnection::establish(&url).unwrap(), &key, &key).await;
    let in_flight = tokio::spawn({
        let (port, key) = (process.port, key.clone());
        async move {
            let res = Gateway::at(port).write(&key, &key).await;
            (res.status(), res.json::<Value>().await.unwrap())
        }
    });
    until(Duration::from_secs(5), "the write waits on the lock", || {
        let (url, dbname) = (url.clone(), dbname.clone());
        async move { (blocking(move || waiting_on_locks(&url, &dbname)).await == 1).then_some(()) }
    })
    .await;

    let pid = process.child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let signalled = Instant::now();
    let (refused, took) = until(Duration::from_secs(1), "new requests refused", || async {
        let fresh = reqwest::Client::builder()
            .timeout(Duration::from_millis(250))
            .build()
            .unwrap();
        let attempt = fresh
            .get(format!("{}/api/health", gateway.address))
            .send()
            .await;
        attempt.err()
    })
    .await;
    eprintln!("a new request failed {took:?} after SIGTERM: {refused}");
    assert!(
        !in_flight.is_finished(),
        "the write finished before the lock was released"
    );

    lock.release();
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}\n{}", process.output());
    assert_eq!(body["created"], false);
    assert!(body["version"].as_i64() > Some(1), "{body}");

    let exit = tokio::time::timeout(SHUTDOWN_TIMEOUT, process.child.wait())
        .await
        .unwrap_or_else(|_| panic!("still running {SHUTDOWN_TIMEOUT:?} after SIGTERM"))
        .unwrap();
    let drained = signalled.elapsed();
    assert!(exit.success(), "exit {exit}: {}", process.output());
    assert!(
        process.output().contains("gateway stopped"),
        "{}",
        process.output()
    );
    eprintln!("api-router exited {drained:?} after SIGTERM");
}
