//! `shard-admin backup` killed with SIGKILL part-way, on a private server (one shard,
//! the metadata database beside it): (a) its process group (the CLI, runuser and
//! pgbackrest's processes) while pgBackRest copies the stanza; (b) at the fault point
//! `before-record` (feature `faults`: the point named on the server and its WAL
//! archived, not yet recorded). After each, `backups list` shows no point of the killed
//! run and only backups pgBackRest counts as complete; `restore --point` of the killed
//! run's name is refused as unknown and changes nothing; the run lock died with the
//! killed run's connection; and the next backup completes, its point restoring exactly.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use control_plane::backup::take::BACKUP_RUN_LOCK;

use crate::private::{self, Private, STANZA};
use crate::{assert_fails, prepare, text, Cli, SHARD_ADMIN};

/// A private server, prepared, its stanza created, 100 probe rows.
fn ready() -> (Private, Cli) {
    let server = Private::start();
    let cli = Cli::for_server(SHARD_ADMIN, &server);
    prepare(&server, &cli.settings(&server));
    private::check(
        "stanza-create",
        server.pgbackrest(&[&format!("--stanza={STANZA}"), "stanza-create"]),
    );
    server.query(
        "shardgate",
        "CREATE TABLE probe (id int PRIMARY KEY); INSERT INTO probe SELECT generate_series(1, 100)",
    );
    (server, cli)
}

fn points(server: &Private) -> String {
    server.query("shardgate_meta", "SELECT count(*) FROM restore_points")
}

/// Whether a session holds the backup's run lock (a bigint advisory lock: its high
/// and low 32 bits in classid and objid).
fn run_lock_held(server: &Private) -> bool {
    let sql = format!(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
           AND classid = {} AND objid = {} AND objsubid = 1",
        BACKUP_RUN_LOCK >> 32,
        BACKUP_RUN_LOCK & 0xffff_ffff
    );
    server.query("shardgate_meta", &sql) != "0"
}

/// Waits (up to 5 s) until no session holds the run lock; how long that took.
fn run_lock_released(server: &Private) -> Duration {
    let started = Instant::now();
    while run_lock_held(server) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the killed backup's run lock is still held"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

/// What "nothing changed" means on the server: the same postmaster, the same rows.
fn state(server: &Private) -> Vec<String> {
    vec![
        server.query("postgres", "SELECT pg_postmaster_start_time()"),
        server.query("shardgate", "SELECT count(*) FROM probe"),
        points(server),
    ]
}

/// After a killed run: `backups list` shows no point, and only the backups pgBackRest
/// counts as complete (`complete`); `restore --point NAME` is refused as unknown, and
/// changes nothing.
fn nothing_trusted(server: &Private, cli: &Cli, killed_point: &str, complete: &[String]) {
    assert_eq!(points(server), "0", "the killed run recorded a point");
    let out = cli.run(&["backups", "list", "--json"], &[]);
    assert!(out.status.success(), "list: {}", text(&out.stderr));
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(listing["points"], serde_json::json!([]), "{listing}");
    let listed: Vec<&str> = listing["stanzas"][0]["backups"]
        .as_array()
        .expect("the stanza's backups")
        .iter()
        .map(|b| b["label"].as_str().unwrap())
        .collect();
    assert_eq!(listed, complete, "{listing}");
    let before = state(server);
    let out = cli.run(&["restore", "--point", killed_point, "--yes"], &[]);
    assert_fails(&out, &format!("unknown restore point {killed_point:?}"));
    assert_eq!(state(server), before, "a refused restore changed something");
}

/// The next backup completes and its point restores exactly: rows 1..=before are
/// there, the 50 written after it are not.
fn next_backup_restores_exactly(server: &Private, cli: &Cli, before: u32) {
    let started = Instant::now();
    let out = cli.run(&["backup", "--type", "full"], &[]);
    assert!(
        out.status.success(),
        "the next backup: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    eprintln!(
        "the next backup took {:.1} s:\n{}",
        started.elapsed().as_secs_f64(),
        text(&out.stdout)
    );
    assert_eq!(points(server), "1");
    let name = server.query("shardgate_meta", "SELECT name FROM restore_points");
    server.query(
        "shardgate",
        &format!(
            "INSERT INTO probe SELECT generate_series({}, {})",
            before + 1,
            before + 50
        ),
    );
    let port = server.restore_to(&name);
    let restored = |sql: &str| server.query_on(port, "shardgate", sql);
    assert_eq!(restored("SELECT count(*) FROM probe"), before.to_string());
    assert_eq!(restored("SELECT max(id) FROM probe"), before.to_string());
}

/// The process ids of a process group's live processes named `comm`.
fn group_members(pgid: u32, comm: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let name = head.split_once(" (").map_or("", |(_, n)| n);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let live = fields.first().is_some_and(|s| *s != "Z");
        if live && fields.get(2) == Some(&pgid.to_string().as_str()) && name == comm {
            out.push(pid);
        }
    }
    out
}

/// The repository's backup directories of the stanza that pgBackRest's `info` does
/// not count as complete, each with how many files it holds under `pg_data`.
fn partial_backups(server: &Private) -> Vec<(PathBuf, usize)> {
    let complete = server.backup_labels();
    let dir = server.dir.join("repo/backup").join(STANZA);
    std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        // Backup labels (20261125-170000F...): not `latest` (a link) nor backup.history.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(|c: char| c.is_ascii_digit())
        })
        .filter(|e| !complete.iter().any(|l| e.file_name() == l.as_str()))
        .map(|e| (e.path(), files_under(&e.path().join("pg_data"))))
        .collect()
}

fn files_under(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.path().is_dir() {
            true => files_under(&e.path()),
            false => 1,
        })
        .sum()
}

#[test]
fn a_backup_killed_while_pgbackrest_copies_leaves_nothing_restore_trusts() {
    if !private::pgbackrest_present() {
        return;
    }
    let test_started = Instant::now();
    let (server, cli) = ready();
    // About 120 MB of data directory, so that the copy lasts long enough to be caught.
    server.query(
        "shardgate",
        "CREATE TABLE filler AS SELECT g, md5(g::text) AS m FROM generate_series(1, 400000) g",
    );
    let mut child = cli
        .command(&["backup", "--type", "full"], &[])
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn shard-admin backup");
    let pgid = child.id();
    // Mid-copy: a pgbackrest process of the group runs, and the unfinished backup's
    // directory holds some of the stanza's files.
    let started = Instant::now();
    let (copied, lock_held) = loop {
        let copying = !group_members(pgid, "pgbackrest").is_empty();
        let copied: usize = partial_backups(&server).iter().map(|(_, n)| *n).sum();
        if copying && copied >= 30 {
            break (copied, run_lock_held(&server));
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup ended before it could be killed mid-copy"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "pgbackrest never started copying"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let killed_at = chrono::Utc::now();
    let kill = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status()
        .expect("kill");
    assert!(kill.success(), "kill -9 of the process group {pgid}");
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status:?}");
    assert!(lock_held, "the run lock was not held while the backup ran");
    let gone = Instant::now();
    while !group_members(pgid, "pgbackrest").is_empty() {
        assert!(
            gone.elapsed() < Duration::from_secs(5),
            "pgbackrest outlived the kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let released = run_lock_released(&server);
    let partial = partial_backups(&server);
    eprintln!(
        "killed after {:.2} s, {copied} files copied; run lock gone {} ms after the kill; left in the repository: {partial:?}",
        started.elapsed().as_secs_f64(),
        released.as_millis()
    );
    assert_eq!(
        partial.len(),
        1,
        "the killed backup's directory: {partial:?}"
    );
    assert!(server.backup_labels().is_empty());

    // The name the killed run would have given its point (it never named one).
    let killed_point = control_plane::backup::point::name_at(killed_at);
    nothing_trusted(&server, &cli, &killed_point, &[]);
    next_backup_restores_exactly(&server, &cli, 100);
    assert_eq!(server.backup_labels().len(), 1);
    let left = partial_backups(&server);
    assert!(left.is_empty(), "unfinished backups left: {left:?}");
    eprintln!("took {:.1} s", test_started.elapsed().as_secs_f64());
}

#[test]
fn a_backup_killed_before_its_point_is_recorded_leaves_nothing_restore_trusts() {
    if !private::pgbackrest_present() {
        return;
    }
    let test_started = Instant::now();
    let (server, cli) = ready();
    let out = cli.run(
        &["backup", "--type", "full"],
        &[("SHARDGATE_FAULT_KILL_BACKUP", "before-record")],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.signal(), Some(9), "not killed: {err}");
    assert!(err.contains("fault point before-record"), "{err}");
    // The point was named on the server: its name, as the run said it.
    let killed_point = err
        .lines()
        .find_map(|l| l.strip_prefix("backup: restore point "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("the killed run named no point: {err}"))
        .to_owned();
    // It got past naming the point on the server, into the wait for its WAL.
    assert!(
        err.contains(&format!(
            "backup: waiting for the WAL of {killed_point} in the archive"
        )),
        "{err}"
    );
    let released = run_lock_released(&server);
    eprintln!("run lock gone {} ms after the kill", released.as_millis());
    // Its pgBackRest backup did complete (pgBackRest lists it); its point is not there.
    let complete = server.backup_labels();
    assert_eq!(complete.len(), 1, "{complete:?}");
    server.query(
        "shardgate",
        "INSERT INTO probe SELECT generate_series(101, 120)",
    );
    nothing_trusted(&server, &cli, &killed_point, &complete);
    // Rows written after the killed run's point are before the next one's: there.
    next_backup_restores_exactly(&server, &cli, 120);
    let name = server.query("shardgate_meta", "SELECT name FROM restore_points");
    assert_ne!(name, killed_point);
    eprintln!("took {:.1} s", test_started.elapsed().as_secs_f64());
}
