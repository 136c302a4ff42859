//! The admin CLI's `keys` commands, run as a user runs them, against a scratch
//! metadata database of their own on the metadata server (a key in the shared one
//! would make every gateway of the topology ask for keys): the secret is printed once
//! and stored only as its SHA-256, listings never show it, every command leaves one audit
//! line (refused ones too), and bad arguments are refused in one line with exit code 2,
//! changing nothing.
//! A key's own limits: [`limits`].

mod limits;

use std::process::{Command, Output};

use control_plane::keys::KeyHash;
use control_plane::map::meta;
use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};
use shard_manager::servers::connection_url;
use shard_manager::{config, ClusterSettings};

/// A metadata database of this test's own; dropped at the end.
struct Scratch {
    settings: ClusterSettings,
}

impl Scratch {
    fn new() -> Self {
        let mut settings: ClusterSettings = config::load(None).expect("configuration");
        settings.metadata.dbname = format!("sgtest_{}", uuid::Uuid::new_v4().simple());
        diesel::sql_query(format!("CREATE DATABASE {}", settings.metadata.dbname))
            .execute(&mut Self::maintenance(&settings))
            .expect("create the scratch metadata database");
        Self { settings }
    }

    fn maintenance(settings: &ClusterSettings) -> PgConnection {
        let mut db = settings.database.clone();
        db.dbname = "postgres".into();
        PgConnection::establish(&connection_url(&db, &settings.metadata.address))
            .expect("connect to the metadata server")
    }

    fn cli(&self, args: &[&str]) -> Output {
        self.cli_with(args, &[])
    }

    /// [`cli`](Self::cli) with these variables set in its environment.
    fn cli_with(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_shard-admin"))
            .args(args)
            .envs(vars.iter().copied())
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .env(
                "SHARDGATE__METADATA__DBNAME",
                &self.settings.metadata.dbname,
            )
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .output()
            .expect("run shard-admin")
    }

    /// Every column of every key row, as text.
    async fn rows(&self) -> Vec<String> {
        let conn = meta::connect(&self.settings).await.unwrap();
        let rows = conn
            .client
            .query(
                "SELECT row_to_json(k)::text FROM api_keys k ORDER BY id",
                &[],
            )
            .await
            .unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = diesel::sql_query(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.settings.metadata.dbname
        ))
        .execute(&mut Self::maintenance(&self.settings));
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command that must succeed; its standard output and error.
fn ok(scratch: &Scratch, args: &[&str]) -> (String, String) {
    let out = scratch.cli(args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{args:?}: {stderr}");
    (stdout, stderr)
}

/// The one audit line among a command's standard error.
fn audit_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("audit: admin command"))
        .collect();
    assert_eq!(lines.len(), 1, "one audit line: {stderr}");
    lines[0]
}

/// The secret alone on standard output.
fn secret(stdout: &str) -> String {
    let line = stdout.trim_end_matches('\n');
    assert!(KeyHash::well_formed(line), "not a key alone: {stdout:?}");
    line.to_owned()
}

#[tokio::test]
async fn a_key_is_printed_once_stored_as_its_hash_listed_without_it_and_audited() {
    let scratch = Scratch::new();
    let (out, err) = ok(
        &scratch,
        &[
            "keys",
            "create",
            "--name",
            "ci",
            "--scopes",
            "write,read",
            "--tables",
            "users,orders",
        ],
    );
    let first = secret(&out);
    assert!(err.contains("shown above only this once"), "{err}");
    let line = audit_line(&err);
    for field in [
        "action=\"keys create\"",
        "outcome=\"done\"",
        "key=\"ci\"",
        "scopes=\"read,write\"",
    ] {
        assert!(line.contains(field), "{field} not in {line}");
    }
    assert!(
        line.contains(" who=\"") && line.contains(" at=20"),
        "{line}"
    );
    assert!(
        !line.contains(&first[3..]),
        "the secret in the audit line: {line}"
    );

    let rows = scratch.rows().await;
    assert_eq!(rows.len(), 1);
    let hash: String = KeyHash::of(&first)
        .0
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        rows[0].contains(&format!("\\\\x{hash}")),
        "stored as its SHA-256: {}",
        rows[0]
    );
    assert!(
        !rows[0].contains(&first[3..]),
        "the secret itself is stored: {}",
        rows[0]
    );
    assert!(
        rows[0].contains(r#""scopes":["read","write"]"#),
        "{}",
        rows[0]
    );

    let (listed, err) = ok(&scratch, &["keys", "list"]);
    assert!(
        audit_line(&err).contains("action=\"keys list\" outcome=\"done\""),
        "{err}"
    );
    assert!(
        listed.contains("ci ") && listed.contains("read,write") && listed.contains("users,orders"),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("sha256:{}", &hash[..8])),
        "{listed}"
    );
    assert!(listed.contains("1 live key(s)"), "{listed}");

    let (out, err) = ok(&scratch, &["keys", "rotate", "ci"]);
    let second = secret(&out);
    assert_ne!(first, second);
    assert!(
        audit_line(&err).contains("action=\"keys rotate\" outcome=\"done\" key=\"ci\""),
        "{err}"
    );
    let (out, err) = ok(&scratch, &["keys", "revoke", "ci"]);
    assert!(out.is_empty(), "revoke prints no secret: {out}");
    assert!(
        audit_line(&err).contains("action=\"keys revoke\" outcome=\"done\" key=\"ci\""),
        "{err}"
    );

    let (all, _) = ok(&scratch, &["keys", "list", "--all"]);
    for shown in [&all, &listed] {
        assert!(
            !shown.contains(&first[3..]) && !shown.contains(&second[3..]),
            "a secret listed: {shown}"
        );
    }
    assert_eq!(all.matches("revoked ").count(), 2, "{all}");
    assert!(
        all.contains("0 live key(s): gateways serve loopback clients only"),
        "{all}"
    );
    assert_eq!(
        scratch.rows().await.len(),
        2,
        "rotation keeps the old key as history"
    );
}

#[tokio::test]
async fn bad_key_arguments_are_refused_in_one_line_and_change_nothing() {
    let scratch = Scratch::new();
    ok(
        &scratch,
        &["keys", "create", "--name", "ci", "--scopes", "read"],
    );
    let before = scratch.rows().await;
    let listed = ok(&scratch, &["keys", "list", "--all"]).0;

    // `keys create` with these arguments after `--name`.
    let create: [(&[&str], &str); 8] = [
        (
            &["ci", "--scopes", "read"],
            "a live key is already named \"ci\"",
        ),
        (
            &["x", "--scopes", "fly"],
            "\"fly\" is not a scope; use one or more of read, write, admin, metrics",
        ),
        (&["x", "--scopes", ""], "an empty name is not a scope"),
        (&["x", "--scopes", "read,"], "an empty name is not a scope"),
        (&["a b", "--scopes", "read"], "\"a b\" is not a key name"),
        (&["", "--scopes", "read"], "\"\" is not a key name"),
        (
            &["x", "--scopes", "read", "--tables", "nope"],
            "--tables: \"nope\" is not a table clients may use; the tables are users, orders",
        ),
        (
            &["x", "--scopes", "read", "--tables", "users,"],
            "--tables: \"\" is not a table",
        ),
    ];
    let mut cases: Vec<(Vec<&str>, &str)> = create
        .iter()
        .map(|(args, expected)| ([&["keys", "create", "--name"], *args].concat(), *expected))
        .collect();
    cases.extend([
        (
            vec!["keys", "revoke", "nope"],
            "no live key is named \"nope\"",
        ),
        (
            vec!["keys", "rotate", "nope"],
            "no live key is named \"nope\"",
        ),
        (
            vec!["keys", "revoke", "bad name!"],
            "\"bad name!\" is not a key name",
        ),
    ]);
    for (args, expected) in cases {
        let out = scratch.cli(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        // The audit line, then the refusal in one line (no backtrace).
        let lines: Vec<&str> = stderr.trim().lines().collect();
        assert_eq!(lines.len(), 2, "{args:?}: {stderr}");
        assert!(
            lines[1].starts_with("error: ") && lines[1].contains(expected),
            "{args:?}: {stderr}"
        );
        let line = audit_line(&stderr);
        assert!(
            line.contains(" WARN ") && line.contains("outcome=\"refused\""),
            "{line}"
        );
        assert!(
            line.contains(&format!("action=\"keys {}\"", args[1])),
            "{line}"
        );
        assert!(
            out.stdout.is_empty(),
            "{args:?}: printed {:?}",
            text(&out.stdout)
        );
    }
    assert_eq!(scratch.rows().await, before, "no key row changed");
    assert_eq!(ok(&scratch, &["keys", "list", "--all"]).0, listed);
}

/// `keys adopt`: a key its operator made (a Kubernetes Secret, as the chart's migrate Job
/// has it) stored as its hash, from an environment variable; the same again changes
/// nothing; once revoked it is not adopted again; another secret under the name, the
/// key under another name, a missing or malformed variable are refused (exit 2) without
/// repeating what the variable holds.
#[tokio::test]
async fn an_operators_key_is_adopted_as_its_hash_once_and_never_after_its_revocation() {
    let scratch = Scratch::new();
    let adopt = |name: &str, var: &str, value: &str| {
        scratch.cli_with(
            &[
                "keys",
                "adopt",
                "--name",
                name,
                "--scopes",
                "admin,read,write",
                "--secret-env",
                var,
            ],
            &[(var, value)],
        )
    };
    let refused = |out: Output, expected: &str| {
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        let last = err.trim().lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: ") && last.contains(expected),
            "{expected}: {err}"
        );
        assert!(
            audit_line(&err).contains("action=\"keys adopt\" outcome=\"refused\""),
            "{err}"
        );
        err
    };
    let key = control_plane::keys::Secret::generate();
    // A Secret's value often ends in a newline (`kubectl create secret --from-file`).
    let out = adopt("admin", "BOOTSTRAP_KEY", &format!("{}\n", key.expose()));
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("adopted key \"admin\""), "{err}");
    let line = audit_line(&err);
    for field in [
        "action=\"keys adopt\"",
        "outcome=\"done\"",
        "key=\"admin\"",
        "scopes=\"read,write,admin\"",
    ] {
        assert!(line.contains(field), "{field} not in {line}");
    }
    let rows = scratch.rows().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let hash: String = key.hash().0.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        rows[0].contains(&format!("\\\\x{hash}")),
        "stored as its SHA-256: {rows:?}"
    );
    assert!(
        !rows[0].contains(&key.expose()[3..]),
        "stored as itself: {rows:?}"
    );
    assert!(!err.contains(&key.expose()[3..]) && out.stdout.is_empty());
    let (listed, _) = ok(&scratch, &["keys", "list"]);
    assert!(
        listed.contains(&format!("sha256:{}", &hash[..8])),
        "{listed}"
    );

    // Again, as the Job runs at every upgrade: nothing changes.
    let out = adopt("admin", "BOOTSTRAP_KEY", key.expose());
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("live already with this secret: nothing changed"),
        "{err}"
    );
    assert_eq!(scratch.rows().await, rows);

    // Another secret under the name, the key under another name: refused.
    let other = control_plane::keys::Secret::generate();
    refused(
        adopt("admin", "BOOTSTRAP_KEY", other.expose()),
        "a live key is already named \"admin\", with another secret",
    );
    refused(
        adopt("root", "BOOTSTRAP_KEY", key.expose()),
        "this key is live already, named \"admin\"",
    );
    assert_eq!(scratch.rows().await, rows);

    // Not a key, or no variable: refused, naming the variable, never its text.
    let err = refused(
        adopt("admin", "BOOTSTRAP_KEY", "hunter2-not-a-key"),
        "BOOTSTRAP_KEY does not hold a key",
    );
    assert!(!err.contains("hunter2"), "{err}");
    refused(
        scratch.cli(&[
            "keys",
            "adopt",
            "--name",
            "admin",
            "--scopes",
            "admin",
            "--secret-env",
            "NO_SUCH_VAR",
        ]),
        "NO_SUCH_VAR (--secret-env) is not set",
    );
    assert_eq!(scratch.rows().await, rows);

    // Rotated away (the old secret revoked): the Secret's key stays revoked.
    ok(&scratch, &["keys", "rotate", "admin"]);
    let rotated = scratch.rows().await;
    let out = adopt("admin", "BOOTSTRAP_KEY", key.expose());
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("was key \"admin\", revoked at 20") && err.contains("not adopted again"),
        "{err}"
    );
    assert_eq!(scratch.rows().await, rotated, "nothing changed");
    ok(&scratch, &["keys", "revoke", "admin"]);
    let out = adopt("admin", "BOOTSTRAP_KEY", key.expose());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (listed, _) = ok(&scratch, &["keys", "list"]);
    assert!(
        listed.contains("0 live key(s)"),
        "revoked stays revoked: {listed}"
    );
}
