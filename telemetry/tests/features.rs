//! The export's TLS and gzip are telemetry's own features, on by default: `cargo tree`
//! of this crate alone shows the OTLP exporter's HTTP client with rustls and its gzip,
//! turned on from here, not by whatever else a build holds (the load tester's HTTP
//! client turns on the same client's TLS in a whole-workspace build).

use std::process::Command;

/// `cargo tree -p telemetry -e features -i <package>`: which features turn on what
/// `package` has, back to the command line, with `args`; offline.
fn inverted(package: &str, args: &[&str]) -> String {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "--manifest-path", manifest])
        .args(["-p", "telemetry", "-e", "features", "-i", package])
        .args(args)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn tls_and_gzip_come_from_telemetrys_own_features() {
    let otlp = inverted("opentelemetry-otlp", &[]);
    for line in [
        r#"opentelemetry-otlp feature "gzip-http""#,
        r#"telemetry feature "gzip""#,
        r#"opentelemetry-otlp feature "reqwest-rustls""#,
        r#"telemetry feature "tls""#,
    ] {
        assert!(otlp.contains(line), "no {line} in:\n{otlp}");
    }
    // The exporter's HTTP client (opentelemetry-http's reqwest) with rustls.
    let client = inverted("reqwest@0.13", &[]);
    assert!(
        client.contains(r#"reqwest feature "rustls""#),
        "no rustls in:\n{client}"
    );
    // Without them, nothing else in telemetry's tree turns them on.
    let bare = inverted("reqwest@0.13", &["--no-default-features"]);
    assert!(!bare.contains(r#"reqwest feature "rustls""#), "{bare}");
    let bare = inverted("opentelemetry-otlp", &["--no-default-features"]);
    assert!(!bare.contains(r#"feature "gzip-http""#), "{bare}");
}
