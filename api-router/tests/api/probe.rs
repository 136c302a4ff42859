//! `api-router probe --ready | --live`, the binary's own health check (what the compose
//! file's health check and the images run): against the real binary serving, then
//! draining after SIGTERM; over TLS, trusting the configured certificate alone; and
//! against a port nothing listens on. Exit codes as the book's table: 0 healthy, 1 not,
//! with one line naming the address and the answer.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use api_router::server::tls::TlsSettings;
use test_app::spawn_app_with;

use test_app::gateway_process::Process;
use test_app::{prepare_database, test_settings};
use test_support::outage::DropDatabase;
use test_support::repo::repo_root;

/// `api-router probe ARGS` with the test's configuration and `env` on top: its exit
/// code and its standard error.
async fn probe(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_api-router"))
        .arg("probe")
        .args(args)
        .current_dir(repo_root())
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run api-router probe");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[tokio::test]
async fn the_probe_passes_on_a_serving_gateway_and_readiness_fails_once_it_drains() {
    let mut settings = test_settings();
    prepare_database(&mut settings).await;
    let db = DropDatabase(settings.cluster.database.dbname.clone());
    let mut gateway = Process::start(&db.0, &[("SHARDGATE__SERVER__DRAIN_MS", "5000")]).await;
    let port = gateway.port;

    // The compose shape: the configured address is the wildcard, asked on loopback.
    let wildcard = format!("0.0.0.0:{port}");
    let configured = [("SHARDGATE__SERVER__LISTEN", wildcard.as_str())];
    assert_eq!(
        probe(&["--ready"], &configured).await,
        (Some(0), String::new())
    );
    assert_eq!(
        probe(&["--live"], &configured).await,
        (Some(0), String::new())
    );

    // Told to stop, the gateway drains: not ready (503), still alive.
    gateway.terminate();
    let listen = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_millis(2500);
    let mut ready = probe(&["--ready", "--listen", &listen], &[]).await;
    while ready.0 == Some(0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        ready = probe(&["--ready", "--listen", &listen], &[]).await;
    }
    let (code, said) = ready;
    assert_eq!(code, Some(1), "readiness while draining: {said}");
    assert!(
        said.contains(&format!(
            "127.0.0.1:{port} answered GET /api/health/ready with 503"
        )) && said.contains("draining"),
        "{said}"
    );
    let alive = probe(&["--live", "--listen", &listen], &[]).await;
    assert_eq!(alive, (Some(0), String::new()), "liveness while draining");

    let (exit, _) = gateway.exit_within(Duration::from_secs(20)).await;
    assert!(exit.success(), "{exit}:\n{}", gateway.output());
}

#[tokio::test]
async fn the_probe_fails_naming_the_address_when_nothing_listens() {
    // A port that was free a moment ago and that nothing listens on now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");

    let started = Instant::now();
    let (code, said) = probe(&["--ready", "--listen", &listen], &[]).await;

    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.starts_with(&format!("api-router probe: nothing answers on {listen}")),
        "{said}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A self-signed certificate for `localhost`, written as PEM files: (cert, key).
fn certificate() -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("sg-probe-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let pair = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, pair.cert.pem()).unwrap();
    std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

#[tokio::test]
async fn over_tls_the_probe_trusts_the_configured_certificate_alone() {
    let (cert, key) = certificate();
    let app = spawn_app_with(|s| {
        s.server.tls = Some(TlsSettings {
            cert_path: cert.clone(),
            key_path: key.clone(),
            hsts_max_age_secs: 0,
        });
    })
    .await;
    let listen = format!("127.0.0.1:{}", app.port);
    let args = ["--ready", "--listen", listen.as_str()];
    let tls = |cert: &PathBuf, key: &PathBuf| {
        [
            (
                "SHARDGATE__SERVER__TLS__CERT_PATH",
                cert.display().to_string(),
            ),
            (
                "SHARDGATE__SERVER__TLS__KEY_PATH",
                key.display().to_string(),
            ),
        ]
    };
    let same = tls(&cert, &key);
    let same: Vec<(&str, &str)> = same.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(probe(&args, &same).await, (Some(0), String::new()));

    // Configured with another certificate, the probe does not trust the gateway's.
    let (other, other_key) = certificate();
    let others = tls(&other, &other_key);
    let others: Vec<(&str, &str)> = others.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, said) = probe(&args, &others).await;
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(&format!("{listen} failed the TLS handshake"))
            && said.contains("not the one server.tls.cert_path names"),
        "{said}"
    );

    // Without [server.tls], plain HTTP to a gateway that speaks TLS: not an answer.
    let (code, said) = probe(&args, &[]).await;
    assert_eq!(code, Some(1), "{said}");
}
