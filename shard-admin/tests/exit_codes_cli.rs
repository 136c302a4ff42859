//! The exit status tells a refusal from a failure (the book's table, under the admin
//! CLI): 2 for a usage error and for a command refused before it changed anything, 1 for
//! a command something it depends on let down. A script retries the one, not the other.

mod common;

use common::{cli, cli_with, text};

#[test]
fn a_usage_error_or_a_refusal_exits_2() {
    // clap's usage error: a missing argument.
    let out = cli(&["move-slots", "--from", "0", "--to", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Usage: shard-admin move-slots"));
    // The configuration refused: an address that is no host:port.
    let out = cli_with(&["check"], &[("SHARDGATE__METADATA__ADDRESS", "nowhere")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).starts_with("error: invalid configuration: "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_command_the_metadata_database_lets_down_exits_1() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let out = cli_with(
        &["map", "show"],
        &[("SHARDGATE__METADATA__ADDRESS", "127.0.0.1:1")],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
}
