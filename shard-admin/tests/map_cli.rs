//! The admin CLI's `map` commands, run as a user runs them, against the metadata server
//! `./setup.sh up` starts and seeds: bad arguments are refused with one clear line and
//! exit code 2 (and, for a command that changes the map, its one audit line), and the
//! stored map is exactly as it was.

mod common;

use common::{assert_refused, cli, text};

#[test]
fn bad_assignments_are_refused_in_one_line_and_change_nothing() {
    let before = cli(&["map", "show"]);
    assert!(
        before.status.success(),
        "map show: {}",
        text(&before.stderr)
    );
    let shown = text(&before.stdout);
    assert!(shown.starts_with("map v"), "{shown}");
    let history = text(&cli(&["map", "history"]).stdout);

    let cases: [(&[&str], &str); 6] = [
        (&["map", "assign-slots", "5=9"], "shard 9 does not exist"),
        (
            &["map", "assign-slots", "0-9=1", "5-20=2"],
            "slot 5 would have two owners: it is given to shard-1 and to shard-2",
        ),
        (
            &["map", "assign-slots", "5000=0"],
            "slot 5000 is out of range",
        ),
        (
            &["map", "assign-slots", "--all", "0-10=0"],
            "slot 11 would have no owner",
        ),
        (
            &["map", "assign-slots", "five=1"],
            "\"five=1\" is not SLOTS=SHARD",
        ),
        (
            &["map", "history", "--limit", "0"],
            "--limit 0 is out of range",
        ),
    ];
    for (args, expected) in cases {
        let out = cli(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_refused(args, &stderr);
    }

    assert_eq!(
        text(&cli(&["map", "show"]).stdout),
        shown,
        "the map is unchanged"
    );
    assert_eq!(
        text(&cli(&["map", "history"]).stdout),
        history,
        "no history line added"
    );
}
