//! `promtool check metrics` on a gateway's live `/metrics`: the API tests that read
//! metrics check them against Prometheus's conventions with it.

use test_app::TestApp;

/// The gateway's `/metrics` now, as Prometheus text.
pub(crate) async fn metrics_text(app: &TestApp) -> String {
    app.client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("the exposition's text")
}

/// What `promtool check metrics` (Debian's `prometheus`; `./setup.sh test` installs it)
/// says of `/metrics` now: nothing when every family is to Prometheus's conventions.
/// `None` when promtool is missing and SHARDGATE_REQUIRE_PROMTOOL is not 1 (the suite
/// sets it); skipped loudly.
pub(crate) async fn promtool_lint(app: &TestApp) -> Option<String> {
    let text = metrics_text(app).await;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            assert!(
                std::env::var("SHARDGATE_REQUIRE_PROMTOOL").as_deref() != Ok("1"),
                "promtool not found ({e}), and SHARDGATE_REQUIRE_PROMTOOL=1 requires it: apt-get install prometheus (./setup.sh test does)"
            );
            eprintln!("SKIPPED promtool check metrics: promtool not found ({e})");
            return None;
        }
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("run promtool");
    Some(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}
