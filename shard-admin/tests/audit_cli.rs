//! Every admin command that changes something leaves exactly one audit line (tracing
//! target `audit`), done or refused, naming who ran it, the action, when, the outcome
//! and what it acted on; read-only commands leave none; no secret shows in the line.
//!
//! Run as a user runs it, against a metadata database and shard databases of the
//! test's own (`sgtest_<uuid>` on the metadata server and on every primary), so that
//! `init` and `migrate` change nothing of the dev cluster's map or data.

mod common;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use common::scratch::Scratch;
use common::{assert_refused, audit_and_rest};

/// The one audit line among a command's standard error.
fn audit_line(args: &[&str], stderr: &str) -> String {
    let (audit, _) = audit_and_rest(stderr);
    assert_eq!(audit.len(), 1, "{args:?}: one audit line: {stderr}");
    audit[0].to_owned()
}

/// Asserts each `field=value` of an audit line (string values are quoted).
fn assert_fields(line: &str, fields: &[(&str, &str)]) {
    for (field, value) in fields {
        let shown = format!(" {field}={value:?}");
        assert!(line.contains(&shown), "{shown} not in {line}");
    }
}

/// The line's `at`: RFC 3339 UTC, within a minute of now.
fn assert_at_now(line: &str) {
    let at = line
        .split(" at=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no at= in {line}"));
    assert!(at.ends_with('Z'), "UTC: {at}");
    let at: DateTime<Utc> = at.parse().unwrap_or_else(|e| panic!("{at}: {e}"));
    let age = Utc::now() - at;
    assert!(age.num_seconds().abs() < 60, "at {at} is not now");
}

#[test]
fn commands_that_change_something_leave_one_audit_line_and_reads_none() {
    let scratch = Scratch::new();
    let who = control_plane::map::meta::actor();
    let metadata = format!("{}/{}", scratch.settings.metadata.address, scratch.name());

    // Done: the schema on every scratch shard database, then the map seeded.
    let (code, stderr) = scratch.run(&["migrate"]);
    assert_eq!(code, Some(0), "migrate: {stderr}");
    let line = audit_line(&["migrate"], &stderr);
    assert!(line.contains(" INFO "), "{line}");
    assert_fields(
        &line,
        &[
            ("who", &who),
            ("action", "migrate"),
            ("outcome", "done"),
            ("database", scratch.name()),
        ],
    );
    let (code, stderr) = scratch.run(&["init"]);
    assert_eq!(code, Some(0), "init: {stderr}");
    let line = audit_line(&["init"], &stderr);
    assert!(
        line.contains(" INFO ") && !line.contains(" error="),
        "{line}"
    );
    assert_fields(
        &line,
        &[
            ("who", &who),
            ("action", "init"),
            ("outcome", "done"),
            ("database", &metadata),
        ],
    );
    assert_at_now(&line);

    // Refused: a move to a shard that does not exist, removing one that does not.
    let args = ["move-slots", "--from", "0", "--to", "9", "--count", "1"];
    let (code, stderr) = scratch.run(&args);
    assert_eq!(code, Some(2), "{stderr}");
    assert_refused(&args, &stderr);
    let line = audit_line(&args, &stderr);
    assert_fields(
        &line,
        &[
            ("who", &who),
            ("action", "move-slots"),
            ("outcome", "refused"),
            ("from", "shard-0"),
            ("to", "shard-9"),
            ("options", "--count 1"),
        ],
    );
    assert!(
        line.contains(" error=\"shard 9 does not exist"),
        "the refusal's text: {line}"
    );
    assert_at_now(&line);

    let args = ["remove-shard", "--shard", "9"];
    let (code, stderr) = scratch.run(&args);
    assert_eq!(code, Some(2), "{stderr}");
    assert_refused(&args, &stderr);
    let line = audit_line(&args, &stderr);
    assert_fields(
        &line,
        &[
            ("who", &who),
            ("action", "remove-shard"),
            ("outcome", "refused"),
            ("shard", "shard-9"),
        ],
    );
    assert!(
        line.contains(" error=\"shard-9 does not exist: the map has shards 0 to 2"),
        "{line}"
    );

    // A password typed into an address is hidden: the configured one and any other.
    let password = scratch
        .settings
        .database
        .password
        .expose_secret()
        .to_owned();
    for primary in [
        format!("postgres://shardgate:{password}@127.0.0.1:1"),
        "admin:hunter2-not-real@127.0.0.1:1".to_owned(),
    ] {
        let args = ["add-shard", "--primary", primary.as_str()];
        let (code, stderr) = scratch.run(&args);
        assert_eq!(code, Some(2), "{stderr}");
        let line = audit_line(&args, &stderr);
        assert_fields(&line, &[("action", "add-shard"), ("outcome", "refused")]);
        assert!(line.contains(":***@127.0.0.1:1"), "{line}");
        for secret in [password.as_str(), "hunter2-not-real"] {
            assert!(
                !stderr.contains(secret),
                "a password in the audit line or the error: {stderr}"
            );
        }
    }

    // Reads leave none.
    for args in [
        &["map", "show"][..],
        &["map", "history"],
        &["moves", "status"],
        &["rebalance", "--by", "slots"],
        &["locate", "user_1"],
        &["check"],
    ] {
        let (code, stderr) = scratch.run(args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(
            audit_and_rest(&stderr).0.is_empty(),
            "{args:?} reads only, yet audited: {stderr}"
        );
    }
}
