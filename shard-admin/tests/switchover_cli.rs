//! `shard-manager switchover`'s refusals, run as a user runs them against the topology
//! `./setup.sh up` starts: each is one clear line, exit code 2 and a `refused` audit
//! line, and the stored map is exactly as it was. (A switchover that happens is proven
//! on a real HA manager in control-plane's tests.)

mod common;

use common::{assert_refused, cli, cli_with, cli_without, text};

/// A monitor address nothing listens on: the refusals below come before it is asked.
const MONITOR: (&str, &str) = (
    "SHARDGATE__FAILOVER__HA_MONITOR",
    "postgres://autoctl_node@127.0.0.1:1/pg_auto_failover",
);

#[test]
fn every_refusal_names_why_and_changes_nothing() {
    let before = text(&cli(&["map", "show"]).stdout);
    assert!(before.starts_with("map v"), "{before}");
    let history = text(&cli(&["map", "history"]).stdout);

    // As against a cluster made with HA=0 (`./setup.sh env` names the monitor of one
    // made under pg_auto_failover, the default).
    let out = cli_without(&["switchover", "--shard", "1"], &[MONITOR.0]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refused: no HA manager runs the shards (`failover.ha_monitor` is not set"),
        "{stderr}"
    );
    assert_refused(&["switchover"], &stderr);

    let cases: [(&[&str], &str); 4] = [
        (&["switchover", "--shard", "9"], "refused: shard-9 is not in the map (its shards: shard-0, shard-1, shard-2"),
        (
            &["switchover", "--shard", "1", "--to", "127.0.0.1:1"],
            "refused: 127.0.0.1:1 is not a server of shard-1 (its primary: 127.0.0.1:25433; its replicas: 127.0.0.1:25533)",
        ),
        (
            &["switchover", "--shard", "1", "--to", "127.0.0.1:25433"],
            "refused: 127.0.0.1:25433 is already shard-1's primary; nothing was changed",
        ),
        (&["switchover", "--shard", "one"], "invalid value 'one' for '--shard <SHARD>'"),
    ];
    for (args, expected) in cases {
        let out = cli_with(args, &[MONITOR]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        if args.get(2) != Some(&"one") {
            assert_refused(args, &stderr);
        }
    }

    // Past the refusals that need nothing, the monitor is asked: down, it fails the
    // command before anything was changed.
    let out = cli_with(&["switchover", "--shard", "1"], &[MONITOR]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(" outcome=\"failed\""), "{stderr}");
    assert!(
        stderr.contains("the HA manager's monitor (postgres://autoctl_node@127.0.0.1:1/pg_auto_failover) did not answer"),
        "{stderr}"
    );

    assert_eq!(
        text(&cli(&["map", "show"]).stdout),
        before,
        "the map is unchanged"
    );
    assert_eq!(
        text(&cli(&["map", "history"]).stdout),
        history,
        "no history line"
    );
}
