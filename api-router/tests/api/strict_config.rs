//! The gateway refuses to start on a configuration typo, naming it: an unknown key in
//! its `--config` file, or an unknown `SHARDGATE__` variable. It stops before it reads
//! anything else, binds nothing and exits 2 (refused); one that cannot listen exits 1.

use std::process::{Command, Output};

fn gateway(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_api-router"))
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .envs(env.iter().copied())
        .output()
        .expect("run api-router")
}

#[test]
fn the_gateway_refuses_an_unknown_key_or_variable_at_start() {
    let file = std::env::temp_dir().join(format!("sg-gateway-typo-{}.toml", std::process::id()));
    std::fs::write(&file, "[server]\nmax_body_byte = 10\n").unwrap();
    let out = gateway(&["--config", file.to_str().unwrap()], &[]);
    std::fs::remove_file(&file).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "unknown configuration key `server.max_body_byte` in {} \
             (did you mean `server.max_body_bytes`?)",
            file.display()
        )),
        "{stderr}"
    );

    let out = gateway(&[], &[("SHARDGATE__CACHE__TTL", "5")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "environment variable SHARDGATE__CACHE__TTL sets `cache.ttl`, which is no \
             configuration key a variable can set"
        ),
        "{stderr}"
    );
}

#[test]
fn a_gateway_that_cannot_listen_fails_with_1_not_2() {
    // The port is taken: the configuration is fine, the system lets the gateway down.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_api-router"))
        .args(["--listen", &address])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run api-router");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
}
