//! The verify mode against the real topology: a gateway spawned as the API tests spawn
//! it (port 0, scratch databases `sgtest_*` on every primary), the `loadtest` binary
//! run with `--scenario verify` for 5 s (4 users, 2 records each), and its verdict read from its
//! `verify: {...}` line and its `--verify-out` file: nothing lost, nothing applied
//! twice, no stale token read; and the table's change stream, followed beside the
//! writes, delivered every acknowledged write once, in order, with nothing else, at a
//! lag it states. Then the check is shown able to fail: behind the
//! gateway's back, one acknowledged record is deleted and another's version bumped
//! once, straight on their primaries, and `--verify-check` on the same file says lost 1
//! and applied twice 1, exiting with status 3.
//!
//! A second run shows the stream's judge able to fail through the real API: its consumer
//! starts at the end of the table's history, and while it writes, the test writes one of
//! its records itself (data the run did not write): the stream's verdict names that
//! change a phantom and the run exits with status 3 (the records' verdict finds nothing
//! lost; a token read that raced that write may count as stale there).
//!
//! Run against the topology `setup.sh` started:
//! `eval "$(./setup.sh env)" && cargo test -p loadtest --test verify`.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use diesel::sql_types::Text;
use diesel::RunQueryDsl;
use serde_json::{json, Value};
use test_app::{spawn_app_with, TestApp};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// Runs the `loadtest` binary with `args`, bounded.
async fn loadtest(args: &[&str]) -> Output {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(args)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("loadtest finished within 120 s")
        .expect("loadtest started")
}

/// The `verify: {...}` line of a run's standard output.
fn verdict_line(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("verify: {").map(|rest| format!("{{{rest}")))
        .unwrap_or_else(|| panic!("no verify line in:\n{stdout}\n{}", stderr(output)));
    serde_json::from_str(&line).expect("the verify line is JSON")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Keys of records whose newest write was acknowledged, from the saved file.
fn acknowledged_keys(saved: &Value) -> Vec<String> {
    let records = saved["ledger"]["records"].as_object().expect("records");
    records
        .iter()
        .filter(|(_, log)| {
            log["writes"]
                .as_array()
                .and_then(|w| w.last())
                .map(|w| &w["fate"])
                == Some(&Value::from("acknowledged"))
        })
        .map(|(key, _)| key.clone())
        .collect()
}

/// Runs `statement` with the record's table, key and id bound, on the key's primary,
/// and returns the rows it changed.
fn on_primary(app: &TestApp, key: &str, statement: &str) -> usize {
    let primary = app.primary(app.shard_of(key).index());
    let mut conn = app.connect(&primary);
    diesel::sql_query(statement)
        .bind::<Text, _>("users")
        .bind::<Text, _>(key)
        .bind::<Text, _>(key)
        .execute(&mut conn)
        .expect("statement on the primary")
}

fn read_saved(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("the --verify-out file"))
        .expect("the file is JSON")
}

/// A gateway on scratch databases, patient with a machine shared by other test runs (a
/// debug build's sign-in can take longer than the default 1 s there); nothing checked
/// here depends on the timeouts.
async fn patient_app() -> TestApp {
    spawn_app_with(|s| {
        s.cluster.database.connect_timeout_ms = 5_000;
        s.cluster.replication.check_timeout_ms = 5_000;
    })
    .await
}

#[tokio::test]
async fn a_clean_run_holds_and_a_record_lost_or_bumped_behind_its_back_is_found() {
    // Arrange: a gateway on scratch databases, and a place for the ledger.
    let app = patient_app().await;
    let dir = std::env::temp_dir().join(format!("sg-verify-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("verify.json");
    let file_arg = file.to_str().unwrap();

    // Act: 4 users, 2 records each, 5 s.
    let run = loadtest(&[
        "--host",
        &app.address,
        "--scenario",
        "verify",
        "--users",
        "4",
        "--increase-rate",
        "4",
        "--run-time",
        "5s",
        "--verify-records",
        "2",
        "--verify-out",
        file_arg,
    ])
    .await;
    eprintln!("{}", String::from_utf8_lossy(&run.stdout));

    // Assert: it held, with real traffic behind it.
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let verdict = verdict_line(&run);
    assert_eq!(verdict["lost"], 0, "{verdict}");
    assert_eq!(verdict["applied_twice"], 0, "{verdict}");
    assert_eq!(verdict["stale_token_reads"], 0, "{verdict}");
    assert_eq!(verdict["unreadable"], 0, "{verdict}");
    assert_eq!(verdict["holds"], true, "{verdict}");
    assert_eq!(
        verdict["records"], 8,
        "4 users own 2 records each: {verdict}"
    );
    let acknowledged = verdict["acknowledged"].as_u64().unwrap();
    // From about 30 to 240 here (a debug build on a machine shared with other test runs).
    assert!(
        acknowledged >= 16,
        "only {acknowledged} writes acknowledged in 5 s"
    );
    assert_eq!(
        verdict["unknown"], 0,
        "a quiet cluster leaves no write in doubt"
    );
    assert!(verdict["token_reads"].as_u64().unwrap() >= acknowledged);
    // The stream: every write of the run (all acknowledged) arrived once, nothing else.
    let stream = &verdict["stream"];
    assert_eq!(stream["holds"], true, "{stream}");
    assert_eq!(stream["ours"], acknowledged, "{stream}");
    for broken in ["lost", "twice", "out_of_order", "phantom", "torn"] {
        assert_eq!(stream[broken], 0, "{broken}: {stream}");
    }
    assert_eq!(stream["incomplete"], Value::Null, "{stream}");
    let (p50, p99) = (
        stream["lag_p50_ms"].as_f64().unwrap(),
        stream["lag_p99_ms"].as_f64().unwrap(),
    );
    // A change arrives after its write ran, and within the stream's poll of a few
    // hundred milliseconds (seconds on a busy machine).
    assert!(0.0 < p50 && p50 <= p99 && p99 < 10_000.0, "{stream}");
    assert!(stream["per_second"].as_f64().unwrap() > 0.0, "{stream}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("change stream (Server-Sent Events"),
        "{stdout}"
    );
    let saved = read_saved(&file);
    assert_eq!(saved["verdict"]["lost"], 0);
    assert_eq!(
        saved["stream"]["lost"], 0,
        "the file keeps the stream's verdict"
    );
    let keys = acknowledged_keys(&saved);
    assert!(
        keys.len() >= 2,
        "records with an acknowledged last write: {keys:?}"
    );

    // Act: behind the gateway's back, one record deleted, another's version bumped once.
    let (gone, bumped) = (&keys[0], &keys[1]);
    let deleted = on_primary(
        &app,
        gone,
        "DELETE FROM records WHERE table_name = $1 AND shard_key = $2 AND id = $3",
    );
    let updated = on_primary(
        &app,
        bumped,
        "UPDATE records SET version = nextval('record_version_seq') \
         WHERE table_name = $1 AND shard_key = $2 AND id = $3",
    );
    assert_eq!((deleted, updated), (1, 1));
    let check = loadtest(&["--host", &app.address, "--verify-check", file_arg]).await;
    eprintln!("{}", String::from_utf8_lossy(&check.stdout));

    // Assert: exactly those two, named, and the exit status says so.
    assert_eq!(check.status.code(), Some(3), "{}", stderr(&check));
    let verdict = verdict_line(&check);
    assert_eq!(verdict["lost"], 1, "{verdict}");
    assert_eq!(verdict["applied_twice"], 1, "{verdict}");
    assert_eq!(verdict["stale_token_reads"], 0, "{verdict}");
    assert_eq!(verdict["holds"], false, "{verdict}");
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        stdout.contains(&format!("Lost {gone}: missing")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("AppliedTwice {bumped}: holds write")),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_change_no_write_of_the_run_made_breaks_the_streams_verdict() {
    // Arrange: a gateway on scratch databases, its table with a history of 3 changes the
    // run's consumer starts after (they are no phantoms); the run started, its tag read
    // from its first lines.
    let app = patient_app().await;
    for n in 0..3 {
        let body = json!({"table": "users", "id": format!("before-{n}"), "data": {"n": n}});
        let res = app.write("before", &body).await;
        assert!(res.status().is_success(), "{}", res.status());
    }
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args([
            "--host",
            &app.address,
            "--scenario",
            "verify",
            "--users",
            "2",
            "--increase-rate",
            "2",
            "--run-time",
            "4s",
            "--verify-records",
            "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("loadtest started");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    let run = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("loadtest said its run within 60 s")
            .expect("loadtest's output")
            .unwrap_or_else(|| panic!("loadtest ended before naming its run:\n{seen}"));
        seen.push_str(&line);
        seen.push('\n');
        if let Some(rest) = line.strip_prefix("loadtest: verify run ") {
            break rest.split(' ').next().unwrap().to_owned();
        }
    };

    // Act: once the users write, one of their records written by someone else.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let key = format!("verify-{run}-0-0");
    let body = json!({"table": "users", "id": key, "data": {"intruder": true}});
    let res = app.write(&key, &body).await;
    assert!(res.status().is_success(), "{}", res.status());
    let mut rest = String::new();
    let finished = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.expect("loadtest's output") {
            rest.push_str(&line);
            rest.push('\n');
        }
        child.wait().await.expect("loadtest ran")
    })
    .await
    .expect("loadtest finished within 120 s");
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await;
    eprintln!("{rest}");

    // Assert: the stream's verdict names the change, and no write of the run was lost.
    assert_eq!(finished.code(), Some(3), "{stderr}");
    let line = rest
        .lines()
        .find_map(|l| l.strip_prefix("verify: {").map(|r| format!("{{{r}")))
        .unwrap_or_else(|| panic!("no verify line in:\n{rest}"));
    let verdict: Value = serde_json::from_str(&line).unwrap();
    let stream = &verdict["stream"];
    assert_eq!(stream["phantom"], 1, "{verdict}");
    assert_eq!(
        (stream["lost"].as_u64(), stream["twice"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(stream["holds"], false, "{verdict}");
    assert_eq!(verdict["holds"], false, "{verdict}");
    assert_eq!(verdict["lost"], 0, "{verdict}");
    assert!(rest.contains("from the table's end, found in "), "{rest}");
    assert!(
        rest.contains(&format!("Phantom {key}: v"))
            && rest.contains("holding data no write of this run made"),
        "{rest}"
    );
}
