//! Output for people and for pipes: the real binary writes no ANSI escape into a pipe
//! (its audit line included), and none on a terminal either when `NO_COLOR` is set to
//! a non-empty value; on a terminal without it, it colours.
//!
//! `--version` names the binary and its version, and exits 0.
//!
//! The terminal is a pseudo-terminal from util-linux's `script`.

mod common;

use std::process::{Command, Output};

use common::{audit_and_rest, text};

/// A command that leaves an audit line without changing anything: refused, no such
/// shard.
const REFUSED: &[&str] = &["move-slots", "--from", "0", "--to", "9", "--count", "1"];

const ESCAPE: &str = "\x1b[";

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_shard-admin")
}

fn repo() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/..")
}

/// Runs [`REFUSED`] with standard output and standard error piped, `NO_COLOR` as given.
fn piped(no_color: Option<&str>) -> Output {
    let mut cmd = Command::new(binary());
    cmd.args(REFUSED).current_dir(repo());
    match no_color {
        Some(value) => cmd.env("NO_COLOR", value),
        None => cmd.env_remove("NO_COLOR"),
    };
    cmd.output().expect("run shard-admin")
}

/// Runs [`REFUSED`] on a pseudo-terminal (standard output and error both), `NO_COLOR`
/// as given; what the terminal showed.
fn on_terminal(no_color: Option<&str>) -> String {
    let line = std::iter::once(binary())
        .chain(REFUSED.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &line, "/dev/null"])
        .current_dir(repo());
    match no_color {
        Some(value) => cmd.env("NO_COLOR", value),
        None => cmd.env_remove("NO_COLOR"),
    };
    let out = cmd.output().expect("run script (util-linux)");
    text(&out.stdout)
}

#[test]
fn a_pipe_gets_plain_lines_with_or_without_no_color() {
    for no_color in [None, Some(""), Some("1")] {
        let out = piped(no_color);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(
            out.status.code(),
            Some(2),
            "NO_COLOR={no_color:?}: {stderr}"
        );
        let (audit, _) = audit_and_rest(&stderr);
        assert_eq!(
            audit.len(),
            1,
            "NO_COLOR={no_color:?}: one audit line: {stderr}"
        );
        assert!(
            !stdout.contains(ESCAPE) && !stderr.contains(ESCAPE),
            "NO_COLOR={no_color:?}: colour in a pipe: {stdout:?} {stderr:?}"
        );
    }
}

#[test]
fn a_terminal_gets_colour_unless_no_color_is_set() {
    let shown = on_terminal(None);
    assert!(shown.contains("admin command"), "{shown}");
    assert!(shown.contains(ESCAPE), "a terminal is coloured: {shown:?}");
    // An empty NO_COLOR asks for nothing.
    let shown = on_terminal(Some(""));
    assert!(shown.contains(ESCAPE), "NO_COLOR empty: {shown:?}");

    let shown = on_terminal(Some("1"));
    assert!(shown.contains("admin command"), "{shown}");
    assert!(!shown.contains(ESCAPE), "NO_COLOR=1: {shown:?}");
}

#[test]
fn version_names_the_binary_and_exits_0() {
    let out = Command::new(binary())
        .arg("--version")
        .output()
        .expect("run shard-admin --version");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        text(&out.stdout),
        format!("shard-admin {}\n", env!("CARGO_PKG_VERSION"))
    );
}
