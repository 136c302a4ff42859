//! `shard-admin changes tail` as a user runs it, on databases of the test's own: every
//! change once, one JSON line each with the cursor that resumes after it; `--after`
//! resumes exactly; `--from-snapshot` starts with the table at one cut; `--count`
//! stops; bad arguments are refused naming the fault.

mod common;

use serde_json::{json, Value};

use common::scratch::Scratch;
use common::{assert_refused, text};

fn lines(stdout: &[u8]) -> Vec<Value> {
    text(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn tail_prints_every_change_once_and_resumes_from_a_printed_cursor() {
    let users: Vec<(String, String, Value)> = (0..12)
        .map(|i| (format!("u{i:02}"), format!("r{i:02}"), json!({"n": i})))
        .collect();
    let scratch = Scratch::holding(&users);
    let tail = ["changes", "tail", "--table", "users"];

    // Everything, until caught up: each record once, as an upsert, with its cursor.
    let out = scratch.output(&[&tail[..], &["--until-caught-up", "--limit", "5"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let all = lines(&out.stdout);
    let mut ids: Vec<&str> = all.iter().map(|c| c["id"].as_str().unwrap()).collect();
    ids.sort();
    let want: Vec<&str> = users.iter().map(|(_, id, _)| id.as_str()).collect();
    assert_eq!(ids, want);
    assert!(all
        .iter()
        .all(|c| c["operation"] == "upsert" && c["table"] == "users"));
    assert!(text(&out.stderr).contains("caught up: resume with --after chg-"));

    // --count 4, then --after the fourth's cursor: the other eight, none twice.
    let out = scratch.output(&[&tail[..], &["--count", "4"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let first = lines(&out.stdout);
    assert_eq!(first.len(), 4);
    let cursor = first[3]["cursor"].as_str().unwrap();
    let out = scratch.output(&[&tail[..], &["--after", cursor, "--until-caught-up"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rest = lines(&out.stdout);
    let mut seen: Vec<Value> = first.iter().chain(&rest).map(|c| c["id"].clone()).collect();
    seen.sort_by_key(|v| v.as_str().unwrap().to_owned());
    assert_eq!(seen.len(), 12, "{seen:?}");
    seen.dedup();
    assert_eq!(seen.len(), 12, "none twice");

    // From a snapshot: the table at one cut, each record as a snapshot row.
    let out = scratch.output(&[&tail[..], &["--from-snapshot", "--until-caught-up"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let snapshot = lines(&out.stdout);
    assert_eq!(snapshot.len(), 12);
    assert!(snapshot.iter().all(|c| c["operation"] == "snapshot"));

    // Refused, exit 2, naming the fault.
    for (args, names) in [
        (vec!["--limit", "0"], "--limit 0"),
        (vec!["--after", "nope"], "--after is not a change cursor"),
    ] {
        let out = scratch.output(&[&tail[..], &args[..]].concat());
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains(names), "{}", text(&out.stderr));
    }
    let out = scratch.output(&["changes", "tail", "--table", "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    assert_refused(
        &["changes", "tail", "--table", "nosuch"],
        &text(&out.stderr),
    );
}
