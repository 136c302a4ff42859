//! A key's own limits from the command line: set at creation, changed with `keys limit`
//! (only the options given), kept by a rotation, shown by `keys list`, audited; bad
//! values and unknown keys are refused in one line, changing nothing.

use super::{ok, secret, text, Scratch};

/// The limit columns of every key row, by id.
async fn limit_rows(scratch: &Scratch) -> Vec<(String, Option<i32>, Option<i32>, Option<i32>)> {
    let conn = control_plane::map::meta::connect(&scratch.settings)
        .await
        .unwrap();
    let rows = conn
        .client
        .query(
            "SELECT name, rate_per_sec, burst, concurrency FROM api_keys ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

/// The `keys list` line of the key named `name`.
fn listed(scratch: &Scratch, name: &str) -> String {
    let (out, _) = ok(scratch, &["keys", "list"]);
    out.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} not listed: {out}"))
        .to_owned()
}

#[tokio::test]
async fn limits_are_set_at_creation_changed_one_by_one_kept_by_rotation_and_listed() {
    let scratch = Scratch::new();
    let (out, err) = ok(
        &scratch,
        &[
            "keys",
            "create",
            "--name",
            "hot",
            "--scopes",
            "read",
            "--rate",
            "5",
            "--burst",
            "10",
            "--concurrency",
            "2",
        ],
    );
    secret(&out);
    assert!(
        err.contains("limits rate 5/s, burst 10, concurrency 2"),
        "{err}"
    );
    ok(
        &scratch,
        &["keys", "create", "--name", "calm", "--scopes", "read"],
    );
    assert_eq!(
        limit_rows(&scratch).await,
        [
            ("hot".into(), Some(5), Some(10), Some(2)),
            ("calm".into(), None, None, None)
        ]
    );
    assert!(
        listed(&scratch, "hot").contains("rate 5/s, burst 10, concurrency 2"),
        "{}",
        listed(&scratch, "hot")
    );
    assert!(listed(&scratch, "calm").contains(" default "));

    // Only the options given change.
    let (out, err) = ok(&scratch, &["keys", "limit", "hot", "--rate", "unlimited"]);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("limits of key \"hot\": rate unlimited, burst 10, concurrency 2 (were rate 5/s, burst 10, concurrency 2)"),
        "{err}"
    );
    assert!(
        err.contains("audit") && err.contains("\"keys limit\""),
        "no audit line: {err}"
    );
    ok(
        &scratch,
        &[
            "keys",
            "limit",
            "calm",
            "--concurrency",
            "UNLIMITED",
            "--burst",
            "3",
        ],
    );
    ok(
        &scratch,
        &[
            "keys",
            "limit",
            "hot",
            "--burst",
            "default",
            "--concurrency",
            "default",
        ],
    );
    assert_eq!(
        limit_rows(&scratch).await,
        [
            ("hot".into(), Some(0), None, None),
            ("calm".into(), None, Some(3), Some(0))
        ]
    );

    // A rotation keeps them (the old row is history, the new one is live).
    ok(&scratch, &["keys", "rotate", "calm"]);
    let rows = limit_rows(&scratch).await;
    assert_eq!(rows[2], ("calm".into(), None, Some(3), Some(0)));
    assert!(
        listed(&scratch, "calm").contains("burst 3, concurrency unlimited"),
        "{}",
        listed(&scratch, "calm")
    );
}

#[tokio::test]
async fn bad_limits_and_unknown_keys_are_refused_in_one_line_and_change_nothing() {
    let scratch = Scratch::new();
    ok(
        &scratch,
        &[
            "keys", "create", "--name", "ci", "--scopes", "read", "--rate", "7",
        ],
    );
    let before = scratch.rows().await;
    let number = "use a whole number from 1 to 1000000, or `default` or `unlimited`";
    let cases: [(&[&str], &str); 9] = [
        (
            &["keys", "limit", "ci", "--rate", "-1"],
            "--rate: \"-1\" is not a limit; use a whole number from 1 to 1000000",
        ),
        (&["keys", "limit", "ci", "--rate", "0"], number),
        (&["keys", "limit", "ci", "--rate", "2.5"], number),
        (
            &["keys", "limit", "ci", "--burst", "unlimited"],
            "--burst: \"unlimited\" is not a limit; use a whole number from 1 to 1000000, or `default`",
        ),
        (
            &["keys", "limit", "ci", "--concurrency", "100001"],
            "--concurrency: \"100001\" is not a limit; use a whole number from 1 to 100000",
        ),
        (
            &["keys", "limit", "nope", "--rate", "5"],
            "no live key is named \"nope\"",
        ),
        (
            &["keys", "limit", "ci"],
            "give at least one of --rate, --burst, --concurrency",
        ),
        (
            &["keys", "create", "--name", "x", "--scopes", "read", "--rate", "-5"],
            "--rate: \"-5\" is not a limit",
        ),
        (
            &["keys", "create", "--name", "x", "--scopes", "read", "--concurrency", "none"],
            "--concurrency: \"none\" is not a limit",
        ),
    ];
    for (args, expected) in cases {
        let out = scratch.cli(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        // Beside the error, the refusal's audit line (target `audit`).
        let lines = stderr.trim().lines().filter(|l| !l.contains(" audit: "));
        assert_eq!(lines.count(), 1, "{args:?}: one line: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: {:?}", text(&out.stdout));
    }
    assert_eq!(scratch.rows().await, before, "no key row changed");
}

#[tokio::test]
async fn a_keys_table_older_than_the_limit_columns_is_read_with_default_limits() {
    // A gateway upgraded before any admin command applied the migration that adds them.
    let scratch = Scratch::new();
    let conn = control_plane::map::meta::connect(&scratch.settings)
        .await
        .unwrap();
    conn.client
        .batch_execute(include_str!(
            "../../../metadata-migrations/2026-11-27-000004_api_keys/up.sql"
        ))
        .await
        .unwrap();
    let hash = control_plane::keys::KeyHash::of("old");
    conn.client
        .execute(
            "INSERT INTO api_keys (name, hash, scopes, created_by) VALUES ('old', $1, '{read}', 't')",
            &[&hash.0.as_slice()],
        )
        .await
        .unwrap();
    let table = control_plane::keys::store::live(&conn.client)
        .await
        .expect("read without the limit columns");
    let key = table.get(&hash).expect("the key is live");
    assert_eq!(key.name, "old");
    assert_eq!(key.limits, control_plane::keys::KeyLimits::default());
}
