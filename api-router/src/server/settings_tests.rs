//! Unit tests of `settings.rs`: the gateway's layered settings and their checks.

use super::*;

fn server(allowed: &[&str], listen: &str) -> ServerSettings {
    ServerSettings {
        listen: listen.into(),
        max_body_bytes: 1,
        max_bulk_body_bytes: 1,
        max_batch_records: 1,
        max_transaction_operations: 1,
        txn_in_doubt_ms: 1,
        txn_recovery_ms: 1,
        max_json_depth: 1,
        max_json_values: 1,
        max_bulk_json_values: 1,
        max_read_bytes: 1,
        max_exports: 1,
        export_send_timeout_secs: 1,
        body_timeout_ms: 1,
        request_timeout_ms: 1,
        shutdown_timeout_secs: 1,
        drain_ms: 0,
        idempotency_ttl_secs: 60,
        idempotency_sweep_secs: 60,
        workers: 1,
        allowed_hosts: allowed.iter().map(|h| h.to_string()).collect(),
        cors: CorsSettings::default(),
        tls: None,
        trusted_proxies: Vec::new(),
    }
}

#[test]
fn limits_out_of_range_are_named() {
    assert_eq!(LimitsSettings::default().validate(), Ok(()));
    assert_eq!(LimitsSettings::default().concurrency_wait_ms, 50);
    let too_fast = LimitsSettings {
        rate_per_sec: 1_000_001,
        ..LimitsSettings::default()
    };
    assert_eq!(
        too_fast.validate(),
        Err("limits.rate_per_sec is 1000001; use 0 to 1000000".into())
    );
    let slow = LimitsSettings {
        concurrency_wait_ms: 60_000,
        ..LimitsSettings::default()
    };
    assert!(slow
        .validate()
        .unwrap_err()
        .starts_with("limits.concurrency_wait_ms"));
}

#[test]
fn zero_idempotency_ttl_or_sweep_is_refused_with_what_to_write() {
    assert_eq!(server(&[], "127.0.0.1:0").validate(), Ok(()));
    let keep_nothing = ServerSettings {
        idempotency_ttl_secs: 0,
        ..server(&[], "127.0.0.1:0")
    };
    assert_eq!(
        keep_nothing.validate(),
        Err("server.idempotency_ttl_secs is 0; use 1 or more (86400 keeps answers a day): with 0 no answer is kept, so a retried write would happen twice".into())
    );
    let spin = ServerSettings {
        idempotency_sweep_secs: 0,
        ..server(&[], "127.0.0.1:0")
    };
    assert_eq!(
        spin.validate(),
        Err("server.idempotency_sweep_secs is 0; use 1 or more (60 sweeps once a minute): with 0 the sweep of expired idempotency answers would never pause".into())
    );
    // Read from a file as from the environment: the start-up check sees the zero.
    let loaded = load_with("[server]\nidempotency_sweep_secs = 0\n").unwrap();
    assert!(loaded
        .server
        .validate()
        .unwrap_err()
        .starts_with("server.idempotency_sweep_secs is 0; use 1 or more"));
}

#[test]
fn hosts_are_matched_by_name_without_port() {
    let s = server(&["localhost", "127.0.0.1", "[::1]"], "127.0.0.1:8080");
    assert!(s.allows_host("localhost:8080"));
    assert!(s.allows_host("LOCALHOST"));
    assert!(s.allows_host("127.0.0.1:1"));
    assert!(s.allows_host("[::1]:8080"));
    assert!(!s.allows_host("evil.example:8080"));
    assert!(!s.allows_host("localhost.evil.example"));
    let s = server(&[], "10.0.0.5:8080");
    assert!(s.allows_host("10.0.0.5:8080"), "the listen address itself");
    assert!(server(&["*"], "0.0.0.0:80").allows_host("anything"));
}

fn load_with(overlay: &str) -> Result<Settings, ConfigError> {
    let dir = std::env::temp_dir().join(format!("sg-set-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("overlay.toml");
    std::fs::write(&file, overlay).unwrap();
    let loaded = Settings::load(Some(&file));
    let _ = std::fs::remove_dir_all(&dir);
    loaded
}

#[test]
fn cors_and_tls_are_off_unless_configured_and_read_when_they_are() {
    let plain = load_with("").unwrap();
    assert!(!plain.server.cors.enabled());
    assert_eq!(plain.server.cors, CorsSettings::default());
    assert!(plain.server.tls.is_none());

    let edge = load_with(
        "[server.cors]\nallowed_origins = [\"https://app.example.com\"]\nmax_age_secs = 60\n\
         [server.tls]\ncert_path = \"/etc/c.pem\"\nkey_path = \"/etc/k.pem\"\n",
    )
    .unwrap();
    let cors = &edge.server.cors;
    assert_eq!(cors.allowed_origins, ["https://app.example.com"]);
    assert_eq!(cors.max_age_secs, 60);
    assert_eq!(
        cors.allowed_methods,
        CorsSettings::default().allowed_methods
    );
    let tls = edge.server.tls.unwrap();
    assert_eq!(tls.cert_path, Path::new("/etc/c.pem"));
    assert_eq!(tls.key_path, Path::new("/etc/k.pem"));
    assert_eq!(tls.hsts().as_deref(), Some("max-age=31536000"));

    let typo = load_with("[server.tls]\ncert = \"c.pem\"\nkey_path = \"k.pem\"\n");
    assert!(
        typo.unwrap_err().to_string().contains("cert"),
        "unknown keys are refused"
    );
}

#[test]
fn export_limits_default_to_four_at_once_and_thirty_seconds_and_refuse_zero() {
    let loaded = load_with("").unwrap();
    assert_eq!(loaded.server.max_exports, 4);
    assert_eq!(loaded.server.export_send_timeout_secs, 30);
    let loaded = load_with("[server]\nmax_exports = 0\n").unwrap();
    assert!(loaded
        .server
        .validate()
        .unwrap_err()
        .starts_with("server.max_exports is 0; use 1 or more"));
    let never = ServerSettings {
        export_send_timeout_secs: 0,
        ..server(&[], "127.0.0.1:0")
    };
    assert!(never
        .validate()
        .unwrap_err()
        .starts_with("server.export_send_timeout_secs is 0; use 1 or more"));
}
