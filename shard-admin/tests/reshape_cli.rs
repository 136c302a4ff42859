//! `shard-admin add-shard`, `remove-shard` and `rebalance` refuse bad arguments as a
//! user meets them, against the cluster `./setup.sh up` starts: one clear line (and the
//! refusal's audit line when the command would change something), exit code 2, and the
//! map unchanged. A plan (`rebalance` without `--apply`) changes nothing either, and
//! leaves no audit line.

mod common;

use common::{assert_refused, audit_and_rest, cli, text};

#[test]
fn bad_reshaping_commands_are_refused_in_one_line_and_change_nothing() {
    let map = cli(&["map", "show"]);
    assert!(map.status.success(), "map show: {}", text(&map.stderr));
    let map = text(&map.stdout);
    let cases: [(&[&str], &str); 5] = [
        (&["remove-shard", "--shard", "9"], "shard-9 does not exist"),
        (
            &["rebalance", "--tolerance", "2"],
            "is not a fraction between 0 and 1",
        ),
        (&["add-shard", "--primary", "nohost"], "expected host:port"),
        (
            &["add-shard", "--primary", "127.0.0.1:25432"],
            "127.0.0.1:25432 already serves a shard of the map",
        ),
        (
            &[
                "add-shard",
                "--primary",
                "127.0.0.1:29",
                "--replica",
                "127.0.0.1:29",
            ],
            "cannot be both the primary and a replica",
        ),
    ];
    for (args, expected) in cases {
        let out = cli(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_refused(args, &stderr);
    }
    // --plan and --apply together: clap's usage error.
    let out = cli(&["rebalance", "--plan", "--apply"]);
    assert_eq!(out.status.code(), Some(2));

    let plan = cli(&["rebalance", "--by", "slots"]);
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    assert!(
        audit_and_rest(&text(&plan.stderr)).0.is_empty(),
        "a plan leaves no audit line: {}",
        text(&plan.stderr)
    );
    let plan = text(&plan.stdout);
    assert!(plan.contains("shard-0: "), "{plan}");
    assert_eq!(
        text(&cli(&["map", "show"]).stdout),
        map,
        "the map is unchanged"
    );
}
