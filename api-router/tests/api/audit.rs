//! The audit line of admin requests, read from the gateway's own `tracing` output: this
//! binary's global subscriber keeps the `audit` target's lines in memory (no other test
//! installs one; the lines of every test's gateway land here, so each test finds its own
//! by a marker in the URI).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use test_app::spawn_app;

use crate::auth::{await_key, create_key, status_with};

/// Every audit line written so far by any gateway of this test binary.
#[derive(Clone, Default)]
pub(crate) struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) fn captured() -> &'static Lines {
    static LINES: OnceLock<Lines> = OnceLock::new();
    LINES.get_or_init(|| {
        let lines = Lines::default();
        let writer = lines.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("audit=info"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init()
            .expect("no other global subscriber in this test binary");
        lines
    })
}

/// The one line naming `marker`, waited for (the line is written as the answer leaves).
pub(crate) async fn line_with(marker: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = String::from_utf8_lossy(&captured().0.lock().unwrap()).into_owned();
        let found: Vec<&str> = text.lines().filter(|l| l.contains(marker)).collect();
        assert!(found.len() <= 1, "one line per request: {found:?}");
        if let Some(line) = found.first() {
            return line.to_string();
        }
        assert!(Instant::now() < deadline, "no audit line names {marker}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn every_admin_request_leaves_one_audit_line_with_who_what_when_and_outcome() {
    captured();
    let app = spawn_app().await;
    let admin = create_key(&app, "auditor", "admin", None).await;
    let reader = create_key(&app, "reader", "read", None).await;
    await_key(&app, &admin).await;
    await_key(&app, &reader).await;
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let path = |n: u32| format!("/api/shards/locate?key={marker}{n}");

    let cases = [
        (
            Some(admin.as_str()),
            200,
            "who=\"auditor\"",
            "outcome=\"done\"",
        ),
        (
            Some(reader.as_str()),
            403,
            "who=\"reader (without the admin scope)\"",
            "outcome=\"refused\"",
        ),
        (None, 401, "who=\"(no valid key)\"", "outcome=\"refused\""),
    ];
    for (n, (key, status, who, outcome)) in (0u32..).zip(cases) {
        let before = chrono::Utc::now();
        assert_eq!(status_with(&app, &path(n), key).await, status);
        let line = line_with(&format!("{marker}{n}")).await;
        assert!(
            line.contains(" INFO ") && line.contains("audit: admin request at="),
            "{line}"
        );
        assert!(line.contains(who), "{who}: {line}");
        assert!(line.contains(outcome), "{outcome}: {line}");
        assert!(line.contains(&format!("status={status}")), "{line}");
        assert!(
            line.contains(&format!("action=\"GET {}\"", path(n))),
            "{line}"
        );
        assert!(line.contains("peer=\"127.0.0.1\""), "{line}");
        let at = line
            .split(" at=")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .expect("an at= field");
        let at = chrono::DateTime::parse_from_rfc3339(at).expect("RFC 3339");
        let after = chrono::Utc::now();
        let slack = chrono::Duration::milliseconds(1);
        assert!(
            at >= before - slack && at <= after + slack,
            "{at} not in {before}..{after}"
        );
        assert!(
            !line.contains(&admin) && !line.contains(&reader),
            "a secret in {line}"
        );
    }

    // An open route leaves no audit line.
    assert_eq!(
        status_with(&app, &format!("/api/health/live?{marker}x"), None).await,
        200
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let text = String::from_utf8_lossy(&captured().0.lock().unwrap()).into_owned();
    assert!(!text.contains(&format!("{marker}x")), "{text}");
}
