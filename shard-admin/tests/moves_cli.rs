//! `shard-admin move-slots` and `moves ...` refuse bad arguments as a user meets them,
//! against the metadata server `./setup.sh up` starts: one clear line and the refusal's
//! audit line, exit code 2, and neither the map nor the recorded moves change.

mod common;

use common::{assert_refused, cli, text};

#[test]
fn bad_moves_are_refused_in_one_line_and_change_nothing() {
    let map = cli(&["map", "show"]);
    assert!(map.status.success(), "map show: {}", text(&map.stderr));
    let map = text(&map.stdout);
    // The highest slot belongs to the last shard, never to shard 0.
    let last_slot = map
        .lines()
        .next()
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|s| s.trim_end_matches(" slots").parse::<u32>().ok())
        .expect("slot count in `map show`")
        - 1;
    let moves = text(&cli(&["moves", "status"]).stdout);

    let not_owned = last_slot.to_string();
    let cases: [(&[&str], &str); 8] = [
        (
            &["move-slots", "--from", "0", "--to", "9", "--count", "1"],
            "shard 9 does not exist",
        ),
        (
            &["move-slots", "--from", "0", "--to", "1", "--slots", "5000"],
            "slot 5000 is out of range",
        ),
        (
            &["move-slots", "--from", "0", "--to", "0", "--count", "1"],
            "a move needs two different shards",
        ),
        (
            &["move-slots", "--from", "0", "--to", "1", "--count", "0"],
            "--count 0 moves nothing",
        ),
        (
            &[
                "move-slots",
                "--from",
                "0",
                "--to",
                "1",
                "--slots",
                &not_owned,
            ],
            "not to shard 0",
        ),
        (
            &["move-slots", "--from", "0", "--to", "1", "--slots", "9-3"],
            "from the lower slot to the higher",
        ),
        (&["moves", "resume", "987654"], "there is no move 987654"),
        (&["moves", "abort", "987654"], "there is no move 987654"),
    ];
    for (args, expected) in cases {
        let out = cli(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_refused(args, &stderr);
    }
    // Neither --slots nor --count: clap's usage error.
    let out = cli(&["move-slots", "--from", "0", "--to", "1"]);
    assert_eq!(out.status.code(), Some(2));

    assert_eq!(
        text(&cli(&["map", "show"]).stdout),
        map,
        "the map is unchanged"
    );
    assert_eq!(
        text(&cli(&["moves", "status"]).stdout),
        moves,
        "no move recorded"
    );
}
