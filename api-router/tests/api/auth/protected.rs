//! Protected mode with the real binary: on a non-loopback address with no key it
//! refuses to start and says how to create a key or opt out; with the opt-out, or
//! with a key, it starts (and then every client needs a key).

use std::process::Stdio;
use std::time::Duration;

use test_app::{spawn_app, TestApp};
use test_support::repo_root;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{create_key, status_at};

/// `api-router --listen 0.0.0.0:0` on the test's databases, with `env` on top.
fn gateway(app: &TestApp, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_api-router"));
    cmd.args(["--listen", "0.0.0.0:0"])
        .current_dir(repo_root())
        .env(
            "SHARDGATE__DATABASE__DBNAME",
            &app.settings.cluster.database.dbname,
        )
        .env(
            "SHARDGATE__METADATA__DBNAME",
            &app.settings.cluster.metadata.dbname,
        )
        .env("SHARDGATE__SERVER__WORKERS", "1")
        .env("RUST_LOG", "info")
        .env("SHARDGATE_LOG_FORMAT", "json")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Reads the child's output until it says where it listens; the port. The output is
/// drained afterwards too, so the child never writes to a closed pipe.
async fn listening(child: &mut Child) -> u16 {
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let (port_tx, port_rx) = tokio::sync::oneshot::channel();
    let mut port_tx = Some(port_tx);
    tokio::spawn(async move {
        loop {
            let line = tokio::select! {
                Ok(Some(l)) = out.next_line() => l,
                Ok(Some(l)) = err.next_line() => l,
                else => break,
            };
            let Ok(line) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if line["fields"]["message"] == "gateway listening" {
                let port = line["fields"]["port"].as_u64().unwrap() as u16;
                port_tx.take().map(|tx| tx.send(port));
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(20), port_rx)
        .await
        .expect("listening within 20 s")
        .expect("exited without listening")
}

#[tokio::test]
async fn the_gateway_refuses_to_start_beyond_loopback_without_a_key() {
    let app = spawn_app().await;
    let out = tokio::time::timeout(Duration::from_secs(30), gateway(&app, &[]).output())
        .await
        .expect("exits within 30 s")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "it started: {text}");
    for needed in [
        "refusing to start (protected mode)",
        "0.0.0.0",
        "shard-admin keys create --name NAME --scopes read,write",
        "[auth] protected_mode = false",
        "SHARDGATE__AUTH__PROTECTED_MODE=false",
    ] {
        assert!(text.contains(needed), "{needed:?} missing from: {text}");
    }
    assert!(!text.contains("gateway listening"), "{text}");

    // The explicit opt-out starts it.
    let mut opted_out = gateway(&app, &[("SHARDGATE__AUTH__PROTECTED_MODE", "false")])
        .spawn()
        .unwrap();
    listening(&mut opted_out).await;
    opted_out.kill().await.unwrap();

    // So does a key; then even a loopback client needs one.
    let key = create_key(&app, "first", "metrics", None).await;
    let mut keyed = gateway(&app, &[]).spawn().unwrap();
    let port = listening(&mut keyed).await;
    let url = format!("http://127.0.0.1:{port}/metrics");
    assert_eq!(status_at(&app.client, &url, None).await, 401);
    assert_eq!(status_at(&app.client, &url, Some(&key)).await, 200);
    keyed.kill().await.unwrap();
}
