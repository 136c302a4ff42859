//! The binary names its version, as container images and package managers expect:
//! `api-router --version` prints `api-router 0.1.0` (the crate's version) and exits 0,
//! without reading any configuration.

use std::process::Command;

#[test]
fn the_gateway_binary_answers_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_api-router"))
        .arg("--version")
        .env("SHARDGATE__SERVER__LISTEN", "not an address")
        .output()
        .expect("run api-router --version");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("api-router {}\n", env!("CARGO_PKG_VERSION"))
    );
}
