//! The real `api-router` binary as a child process (for the shutdown, kill and
//! benchmark runs): started on port 0, its port read back from its own log, its output
//! kept for failure messages.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use test_support::repo::repo_root;

/// The running binary; killed on drop if it is still running.
pub struct Process {
    child: Child,
    pub port: u16,
    /// Everything it printed.
    output: Arc<Mutex<Vec<String>>>,
    /// Reads the pipes until the process closes them.
    reader: Option<tokio::task::JoinHandle<()>>,
    signalled: Option<Instant>,
}

impl Process {
    /// Starts `api-router --listen 127.0.0.1:0` on database `dbname` (and the metadata
    /// database of that name) with two workers,
    /// a 10 s shutdown timeout and `env` on top, and waits for `gateway listening`.
    /// `SG_GATEWAY_BIN` names another build of the binary to run (a benchmark's build
    /// before a change, run right after the one with it).
    pub async fn start(dbname: &str, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(gateway_binary())
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(repo_root())
            .env("SHARDGATE__DATABASE__DBNAME", dbname)
            // The test's own metadata database (app::prepare_database names it
            // alike), never the dev cluster's map.
            .env("SHARDGATE__METADATA__DBNAME", dbname)
            .env("SHARDGATE__SERVER__SHUTDOWN_TIMEOUT_SECS", "10")
            .env("SHARDGATE__SERVER__WORKERS", "2")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
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
        let reader = tokio::spawn(async move {
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
            reader: Some(reader),
            signalled: None,
        }
    }

    /// The child's pid, for reading its /proc entries.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the process is running")
    }

    /// Sends SIGTERM, as a service manager would. The time it was sent is taken before
    /// `kill` starts: the process may get the signal, and start its drain's clock, before
    /// `kill` has exited (a few ms on a loaded machine), so a time taken after it would
    /// make a full drain look short.
    pub fn terminate(&mut self) {
        let pid = self.child.id().expect("still running").to_string();
        let sent = Instant::now();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid}");
        self.signalled = Some(sent);
    }

    /// Waits for the exit; panics if it takes longer than `limit` after SIGTERM.
    pub async fn exit_within(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let status = tokio::time::timeout(limit, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("still running {limit:?} after SIGTERM:\n{}", self.output()))
            .expect("wait for api-router");
        let after = self.signalled.expect("terminated").elapsed();
        // Its last lines may still be in the pipes.
        if let Some(reader) = self.reader.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
        (status, after)
    }

    /// Waits for an exit nobody asked for (a kill point); panics after `limit`.
    pub async fn died_within(&mut self, limit: Duration) -> ExitStatus {
        let status = tokio::time::timeout(limit, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("still running after {limit:?}:\n{}", self.output()));
        if let Some(reader) = self.reader.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
        status.expect("wait for api-router")
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }
}

/// The `api-router` binary: `SG_GATEWAY_BIN`, else the one Cargo built beside the
/// running test or benchmark (`target/<profile>/api-router`, the test itself being in
/// `target/<profile>/deps/`), as it builds a package's binaries for its tests.
fn gateway_binary() -> PathBuf {
    if let Some(binary) = std::env::var_os("SG_GATEWAY_BIN") {
        return binary.into();
    }
    let test = std::env::current_exe().expect("the running test's path");
    let profile = test
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps");
    profile.join(format!("api-router{}", std::env::consts::EXE_SUFFIX))
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

#[cfg(test)]
mod tests {
    use super::{listening_port, strip_ansi};

    #[test]
    fn the_port_is_read_from_coloured_and_plain_logs() {
        let coloured = "\u{1b}[2m2026-01-01T00:00:00Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m \
        \u{1b}[2mapi_router::startup\u{1b}[0m\u{1b}[2m:\u{1b}[0m gateway listening \
        \u{1b}[3mport\u{1b}[0m\u{1b}[2m=\u{1b}[0m41234 \u{1b}[3mlisten\u{1b}[0m\u{1b}[2m=\u{1b}[0m127.0.0.1:0";
        assert_eq!(listening_port(&strip_ansi(coloured)), Some(41234));
        let plain =
            "2026-01-01T00:00:00Z INFO api_router::startup: gateway listening port=80 listen=x";
        assert_eq!(listening_port(plain), Some(80));
        assert_eq!(listening_port("server down port=1"), None);
    }
}
