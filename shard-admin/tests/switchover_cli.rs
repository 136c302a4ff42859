//! `shard-manager switchover`'s refusals, run as a user runs them against the topology
//! `./setup.sh up` starts: each is one clear line, exit code 2 and a `refused` audit
//! line, and the stored map is exactly as it was; and one that happens, shard 1 handed to
//! its replica and back on that topology's HA manager. (A switchover under load is proven
//! on a real HA manager in control-plane's tests.)

mod common;

use common::{assert_refused, cli, cli_with, cli_without, text};

/// A monitor address nothing listens on: the refusals below come before it is asked.
const MONITOR: (&str, &str) = (
    "SHARDGATE__FAILOVER__HA_MONITOR",
    "postgres://autoctl_node@127.0.0.1:1/pg_auto_failover",
);

/// The two tests must not overlap: one checks the map is unchanged, the other changes it.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn every_refusal_names_why_and_changes_nothing() {
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
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

/// A switchover as a user runs it on `./setup.sh up`'s topology, whose shards
/// pg_auto_failover runs by default: shard 1's primary handed to its replica and back.
/// Each time the command says so, the map names the new primary, and the history has a
/// `switchover` line. (Skipped, saying so, on a cluster made with HA=0.)
#[test]
fn a_switchover_hands_shard_1_to_its_replica_and_back() {
    if std::env::var_os(MONITOR.0).is_none() {
        eprintln!("skipped: no HA manager runs this cluster (made with HA=0)");
        return;
    }
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let line = |map: &str| -> String {
        map.lines()
            .find(|l| l.starts_with("shard-1:"))
            .unwrap_or_else(|| panic!("no shard-1 in {map}"))
            .to_owned()
    };
    let before = line(&text(&cli(&["map", "show"]).stdout));
    let (primary, replica) = ("127.0.0.1:25433", "127.0.0.1:25533");
    assert!(
        before.starts_with(&format!("shard-1: primary {primary}, replicas [{replica}]")),
        "{before}"
    );
    for (from, to) in [(primary, replica), (replica, primary)] {
        let out = cli(&["switchover", "--shard", "1"]);
        // What it says, wherever it says it (the audit line goes to standard error).
        let stdout = text(&out.stdout) + &text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        assert!(
            stdout.contains(&format!("shard-1 switched over from {from} to {to}: term ")),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("{from} is a standby again and takes reads")),
            "{stdout}"
        );
        let now = line(&text(&cli(&["map", "show"]).stdout));
        assert!(
            now.starts_with(&format!("shard-1: primary {to}, replicas [{from}]")),
            "{now}"
        );
        let history = text(&cli(&["map", "history"]).stdout);
        let newest = history.lines().nth(1).unwrap_or_default();
        assert!(
            newest.contains(" switchover ")
                && newest.contains(&format!("shard-1 switched over from {from} to {to}")),
            "{history}"
        );
    }
}
