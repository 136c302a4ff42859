//! Headless Chromium driven through the DevTools protocol over a pipe
//! (`--remote-debugging-pipe`): JSON messages, each ended by a NUL byte, that Chromium
//! reads on its fd 3 and writes on its fd 4. A `sh` wrapper maps those to our stdin and
//! stdout, so no WebSocket client and no extra crate is needed.
//!
//! Real time, not `--virtual-time-budget`: virtual time runs the page's one-second polls
//! back to back, so the charts sample the gateway several times within the same
//! wall-clock second and come out flat.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Longest wait for one DevTools answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The Chromium binary: `SHARDGATE_CHROMIUM`, else Debian's `/usr/bin/chromium`.
/// Panics when neither exists: the browser tests must not pass by not running.
pub fn binary() -> PathBuf {
    let path = std::env::var_os("SHARDGATE_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.is_file(),
        "no Chromium at {}: run ./setup.sh up (it installs Debian's `chromium`), \
         or point SHARDGATE_CHROMIUM at a Chromium binary",
        path.display()
    );
    path
}

/// Runs before the page's own scripts: collects uncaught errors, rejected promises and
/// Content Security Policy violations in `window.pageProblems`, for tests to assert on.
pub const RECORD_PAGE_PROBLEMS: &str = r#"
    window.pageProblems = [];
    addEventListener("error", (e) => pageProblems.push(`error: ${e.message} at ${e.filename}:${e.lineno}`));
    addEventListener("unhandledrejection", (e) => pageProblems.push(`unhandled rejection: ${e.reason}`));
    document.addEventListener("securitypolicyviolation", (e) =>
        pageProblems.push(`CSP ${e.violatedDirective} blocked ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`));
"#;

/// A headless Chromium with one page attached. Killed on drop; its profile directory
/// is removed.
pub struct Browser {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    next_id: u64,
    /// The page's DevTools session, once [`Browser::open`] ran.
    session: Option<String>,
    profile: PathBuf,
}

impl Browser {
    /// Starts Chromium with a fresh profile and a 1400×1000 window.
    pub async fn launch(binary: &Path) -> Self {
        let profile =
            std::env::temp_dir().join(format!("sg-chromium-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&profile).expect("create Chromium profile directory");
        let mut child = Command::new("sh")
            .arg("-c")
            // fd 3 <- our stdin, fd 4 -> our stdout; Chromium's own output to a log.
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 </dev/null >>"$SG_CHROMIUM_LOG" 2>&1"#)
            .arg(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=1400,1000",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .env("SG_CHROMIUM_LOG", profile.join("chromium.log"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let input = child.stdin.take().expect("piped stdin");
        let output = BufReader::new(child.stdout.take().expect("piped stdout"));
        Self {
            child,
            input,
            output,
            next_id: 0,
            session: None,
            profile,
        }
    }

    /// Opens `url` in a new page (which records its problems in `window.pageProblems`,
    /// see [`RECORD_PAGE_PROBLEMS`]) and keeps its session for the calls that follow.
    pub async fn open(&mut self, url: &str) {
        let target = self
            .call("Target.createTarget", json!({ "url": "about:blank" }))
            .await;
        let target_id = target["targetId"].as_str().expect("targetId").to_owned();
        let attached = self
            .call(
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await;
        self.session = Some(
            attached["sessionId"]
                .as_str()
                .expect("sessionId")
                .to_owned(),
        );
        // The Page domain must be on for the script below to run on navigation.
        self.call("Page.enable", json!({})).await;
        self.call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": RECORD_PAGE_PROBLEMS }),
        )
        .await;
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await;
        self.call("Page.navigate", json!({ "url": url })).await;
    }

    /// Evaluates `expression` in the page and returns its value (JSON-serializable).
    pub async fn evaluate(&mut self, expression: &str) -> Value {
        let answer = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
            )
            .await;
        if let Some(exception) = answer.get("exceptionDetails") {
            panic!("{expression} threw: {exception}");
        }
        answer["result"]["value"].clone()
    }

    /// Evaluates `expression` every 200 ms until `done` holds for its value, and returns
    /// that value; panics with the last one after `limit`.
    pub async fn evaluate_until(
        &mut self,
        expression: &str,
        what: &str,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.evaluate(expression).await;
            if done(&value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "the page never showed {what} within {limit:?}; last state: {value:#}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Saves what the page shows now as a PNG.
    pub async fn screenshot(&mut self, path: &Path) {
        let shot = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        let png = base64_decode(shot["data"].as_str().expect("screenshot data"));
        std::fs::write(path, png)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// Closes the browser and waits for it to exit.
    pub async fn close(mut self) {
        self.session = None;
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            self.send("Browser.close", json!({})).await;
            self.child.wait().await
        })
        .await;
    }

    /// One DevTools command; returns its `result`, panics on an error answer.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params).await;
        let answer = tokio::time::timeout(CALL_TIMEOUT, self.answer_to(id))
            .await
            .unwrap_or_else(|_| panic!("Chromium did not answer {method} within {CALL_TIMEOUT:?}"));
        if let Some(error) = answer.get("error") {
            panic!("{method} failed: {error}");
        }
        answer["result"].clone()
    }

    async fn send(&mut self, method: &str, params: Value) -> u64 {
        self.next_id += 1;
        let mut message = json!({ "id": self.next_id, "method": method, "params": params });
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).expect("serialize command");
        bytes.push(0);
        self.input
            .write_all(&bytes)
            .await
            .unwrap_or_else(|e| panic!("Chromium's pipe closed before {method}: {e}"));
        self.input.flush().await.expect("flush DevTools pipe");
        self.next_id
    }

    /// Reads messages until the answer to `id`; events in between are skipped.
    async fn answer_to(&mut self, id: u64) -> Value {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = self
                .output
                .read_until(0, &mut buf)
                .await
                .expect("read DevTools pipe");
            if n == 0 {
                let log =
                    std::fs::read_to_string(self.profile.join("chromium.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                panic!(
                    "Chromium exited (its DevTools pipe closed); the end of its log:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            if buf.last() == Some(&0) {
                buf.pop();
            }
            let message: Value = serde_json::from_slice(&buf).expect("DevTools message is JSON");
            if message["id"].as_u64() == Some(id) {
                return message;
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Standard base64 (with padding), as DevTools sends binary data.
fn base64_decode(text: &str) -> Vec<u8> {
    fn value(c: u8) -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {:?}", c as char),
        }
    }
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut bits = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            bits |= value(c) << (18 - 6 * i);
        }
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[test]
fn base64_decodes_reference_vectors() {
    assert_eq!(base64_decode(""), b"");
    assert_eq!(base64_decode("Zg=="), b"f");
    assert_eq!(base64_decode("Zm8="), b"fo");
    assert_eq!(base64_decode("Zm9v"), b"foo");
    assert_eq!(base64_decode("Zm9vYmFy"), b"foobar");
}
