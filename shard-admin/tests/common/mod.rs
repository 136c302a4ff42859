//! The admin CLI as a user runs it, for the CLI tests: the real binary from the repo
//! root, with the environment `./setup.sh env` gave, and its standard error told apart
//! into audit lines and the rest.

// Each test binary uses its part.
#![allow(dead_code)]

use std::process::{Command, Output};

pub mod scratch;

pub fn cli(args: &[&str]) -> Output {
    cli_with(args, &[])
}

/// [`cli`] with more environment variables (a scratch database's name).
pub fn cli_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    command(args, env).output().expect("run shard-admin")
}

/// The command [`cli_with`] runs, to run otherwise (within a bound).
pub fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shard-admin"));
    cmd.args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .envs(env.iter().copied())
        .env("NO_COLOR", "1");
    cmd
}

/// [`cli`] without some of the environment `./setup.sh env` gave (the HA monitor's
/// address, say, to run as against a cluster no HA manager runs).
pub fn cli_without(args: &[&str], unset: &[&str]) -> Output {
    let mut cmd = command(args, &[]);
    for name in unset {
        cmd.env_remove(name);
    }
    cmd.output().expect("run shard-admin")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A command's standard error: (its audit lines, tracing target `audit`; the others).
pub fn audit_and_rest(stderr: &str) -> (Vec<&str>, Vec<&str>) {
    stderr
        .trim()
        .lines()
        .partition(|l| l.contains(" audit: admin command "))
}

/// Whether a command changes something, so that it leaves an audit line even when it
/// is refused (`map history`, `moves status`, `export`, `query`, `backups list` and a
/// `rebalance` plan read only).
pub fn changes(args: &[&str]) -> bool {
    let reads = matches!(
        args,
        ["map", "show" | "history", ..]
            | ["moves", "status", ..]
            | ["export", ..]
            | ["query", ..]
            | ["changes", "tail", ..]
            | ["backups", "list", ..]
    ) || (args.first() == Some(&"rebalance") && !args.contains(&"--apply"));
    !reads
}

/// Asserts a refused command's standard error: one error line (no backtrace), and one
/// audit line saying `refused` for a command that changes something, none otherwise.
pub fn assert_refused(args: &[&str], stderr: &str) {
    let (audit, rest) = audit_and_rest(stderr);
    assert_eq!(rest.len(), 1, "{args:?}: one line, no backtrace: {stderr}");
    if changes(args) {
        assert_eq!(audit.len(), 1, "{args:?}: one audit line: {stderr}");
        assert!(
            audit[0].contains(" WARN ") && audit[0].contains(" outcome=\"refused\""),
            "{args:?}: {}",
            audit[0]
        );
    } else {
        assert!(
            audit.is_empty(),
            "{args:?}: reads only, yet audited: {stderr}"
        );
    }
}
