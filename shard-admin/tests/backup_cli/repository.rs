//! pgBackRest's repository missing, not writable, or full, on a private server (one
//! shard, the metadata database beside it): `backup`, `backups list` and `restore`
//! each fail naming the repository's path and what to do, exit 2 as the other
//! refusals do, record nothing, and leave the server untouched. The full repository is
//! a real one: a 4 MiB tmpfs (mounted when the test runs as root; skipped, loudly,
//! otherwise).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::private::{self, Private, STANZA};
use crate::{assert_failed, assert_fails, prepare, Cli, SHARD_ADMIN};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    /// A tmpfs of `size` at `dir`, given to the servers' user; None when it cannot be
    /// mounted here (not root, or no permission to mount).
    fn tmpfs(dir: &Path, size: &str) -> Option<Mount> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0750"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
        let _ = Command::new("chown")
            .arg("postgres:postgres")
            .arg(dir)
            .status();
        Some(Mount(dir.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_missing_unwritable_or_full_repository_is_named_and_nothing_changes() {
    if !private::pgbackrest_present() {
        return;
    }
    let server = Private::start();
    let cli = Cli::for_server(SHARD_ADMIN, &server);
    prepare(&server, &cli.settings(&server));
    let stanza = format!("--stanza={STANZA}");
    private::check(
        "stanza-create",
        server.pgbackrest(&[&stanza, "stanza-create"]),
    );
    server.query(
        "shardgate",
        "CREATE TABLE probe (id int PRIMARY KEY); INSERT INTO probe SELECT generate_series(1, 100)",
    );
    let state = || {
        vec![
            server.query("postgres", "SELECT pg_postmaster_start_time()"),
            server.query("shardgate", "SELECT count(*) FROM probe"),
            server.query("shardgate_meta", "SELECT count(*) FROM restore_points"),
            server.backup_labels().len().to_string(),
        ]
    };
    let before = state();
    assert_eq!(before[1..], ["100", "0", "0"]);
    let repo = server.dir.join("repo");
    let config = server.config().display().to_string();

    // Missing: every command names the path and what to do.
    let gone = server.dir.join("repo.gone");
    std::fs::rename(&repo, &gone).unwrap();
    let missing = format!(
        "pgBackRest repository {} (repo1-path in {config}) does not exist: mount or restore it",
        repo.display()
    );
    for args in [
        &["backup", "--type", "full"][..],
        &["backups", "list"][..],
        &["restore", "--point", "sg_20200101T000000Z", "--yes"][..],
    ] {
        let out = cli.run(args, &[]);
        assert_fails(&out, &missing);
        assert_fails(&out, "stanza-create");
    }
    std::fs::rename(&gone, &repo).unwrap();
    assert_eq!(state(), before, "a missing repository changed something");

    // Not writable by the servers' user (as root, postgres; else this user).
    let user =
        match std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)) {
            Ok(0) => "postgres".to_owned(),
            _ => std::env::var("USER").unwrap_or_default(),
        };
    let chmod = |mode: &str| {
        let ok = Command::new("chmod").arg(mode).arg(&repo).status();
        assert!(ok.is_ok_and(|s| s.success()), "chmod {mode}");
    };
    chmod("0550");
    let out = cli.run(&["backup", "--type", "full"], &[]);
    chmod("0750");
    assert_fails(
        &out,
        &format!(
            "pgBackRest repository {} is not writable by {user}: give the directory to that user",
            repo.display()
        ),
    );
    assert_eq!(
        state(),
        before,
        "an unwritable repository changed something"
    );

    // Full: the repository on a 4 MiB tmpfs (the servers archive there too), a data
    // set that does not fit, pgBackRest not retrying (the test's configuration).
    let full = server.dir.join("full");
    let Some(_mount) = Mount::tmpfs(&full, "4m") else {
        eprintln!("SKIPPED the full repository: a tmpfs cannot be mounted here (not root?)");
        return;
    };
    server.query(
        "shardgate",
        "CREATE TABLE filler AS SELECT g, md5(g::text) AS m FROM generate_series(1, 200000) g",
    );
    let text = std::fs::read_to_string(server.config()).unwrap();
    let moved = text.replace(
        &format!("repo1-path={}\n", repo.display()),
        &format!("repo1-path={}\njob-retry=0\n", full.display()),
    );
    assert_ne!(moved, text, "the repository moved in the configuration");
    std::fs::write(server.config(), moved).unwrap();
    private::check(
        "stanza-create",
        server.pgbackrest(&[&stanza, "stanza-create"]),
    );
    let before = state();
    let started = std::time::Instant::now();
    let out = cli.run(&["backup", "--type", "full"], &[]);
    eprintln!(
        "the backup into a full repository failed after {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        crate::text(&out.stderr)
    );
    assert_failed(
        &out,
        &format!(
            "pgBackRest repository {} is full (no space left: ",
            full.display()
        ),
    );
    assert_failed(&out, "no restore point was recorded");
    assert_failed(
        &out,
        &format!("backup of stanza {STANZA} ({})", server.address()),
    );
    assert_eq!(state(), before, "a full repository changed something");
    let listed = cli.run(&["backups", "list", "--json"], &[]);
    let listing: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(listing["points"], serde_json::json!([]));
    assert_eq!(listing["stanzas"][0]["backups"], serde_json::json!([]));
}
