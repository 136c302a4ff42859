//! `shard-admin backup` and `backups list`, run as a user runs them, with real
//! pgBackRest against a private PostgreSQL server of the test's own ([`private`]: one
//! shard, and the metadata database on the same server), never the shared topology:
//! bad arguments and every refusal change nothing and record no point; a backup
//! records a restore point with real LSNs, `backups list --json` shows it and its
//! pgBackRest backup; and the stanza restored to the point into a scratch directory
//! holds exactly the rows written before the point. A backup killed part-way
//! ([`killed`]) and a missing, unwritable or full repository ([`repository`]) leave
//! nothing a restore trusts. A point taken under load ([`under_load`], the load in
//! [`load`]) restores exactly the writes before it and no half transfer.

mod fence;
mod ha_manager;
mod killed;
mod repository;
mod restore;
mod under_load;

use std::process::{Command, Output};

use test_support::backup::cli::{prepare, prepare_with_stanzas, Cli, HA_MONITOR};
use test_support::backup::server::{Private, STANZA};
use test_support::backup::{load, server as private};

/// The CLI under test.
const SHARD_ADMIN: &str = env!("CARGO_BIN_EXE_shard-admin");

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A command refused before it did anything: exit 2, and its error line contains `needle`.
fn assert_fails(out: &Output, needle: &str) {
    assert_ends(out, 2, needle)
}

/// A command a server or the repository let down: exit 1, its error line names `needle`.
fn assert_failed(out: &Output, needle: &str) {
    assert_ends(out, 1, needle)
}

fn assert_ends(out: &Output, code: i32, needle: &str) {
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout {} stderr {err}",
        text(&out.stdout)
    );
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(line.contains(needle), "expected {needle:?} in {line:?}");
}

#[test]
fn bad_arguments_are_refused_naming_them() {
    for (args, needle) in [
        (&["backup", "--type", "weekly"][..], "weekly"),
        (&["backup", "--full"][..], "--full"),
        (&["backups", "show"][..], "show"),
        (&["backups", "list", "--yaml"][..], "--yaml"),
        (&["restore"][..], "--point"),
        (&["restore", "--point"][..], "--point"),
        (&["restore", "--point", "sg_x", "--now"][..], "--now"),
        (&["restore", "sg_x", "--yes"][..], "sg_x"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_shard-admin"))
            .args(args)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .output()
            .expect("run shard-admin");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(
            out.stdout.is_empty(),
            "{args:?} printed {:?}",
            text(&out.stdout)
        );
    }
}

#[test]
fn a_backup_restores_exactly_to_its_point() {
    if !private::pgbackrest_present() {
        return;
    }
    let server = Private::start();
    let cli = Cli::for_server(SHARD_ADMIN, &server);
    let settings = cli.settings(&server);
    prepare(&server, &settings);
    server.query(
        "shardgate",
        "CREATE TABLE probe (id int PRIMARY KEY); \
         INSERT INTO probe SELECT generate_series(1, 100)",
    );
    let points = || server.query("shardgate_meta", "SELECT count(*) FROM restore_points");
    let backups = || server.backup_labels().len();

    // Refusals, each changing nothing: no stanza yet, pgbackrest missing, a move
    // active, a shard down.
    let out = cli.run(&["backup", "--type", "full"], &[]);
    assert_fails(&out, &format!("stanza {STANZA} ({})", server.address()));
    assert_fails(&out, "does not exist in the pgBackRest repository");
    private::check(
        "stanza-create",
        server.pgbackrest(&[&format!("--stanza={STANZA}"), "stanza-create"]),
    );
    let out = cli.run(
        &["backup"],
        &[("SHARDGATE__BACKUP__PROGRAM", "/nonexistent/bin/pgbackrest")],
    );
    assert_fails(
        &out,
        "pgbackrest is not installed (/nonexistent/bin/pgbackrest not found)",
    );
    server.query(
        "shardgate_meta",
        "INSERT INTO moves (kind, source, target, slots, phase, map_before, actor) \
         VALUES ('move', 0, 1, '{1}', 'copy', 1, 'test')",
    );
    let out = cli.run(&["backup"], &[]);
    assert_fails(
        &out,
        "slot move 1 (shard-0 to shard-1, phase copy) is active",
    );
    server.query("shardgate_meta", "UPDATE moves SET phase = 'aborted'");
    // A shard whose primary is down (a second shard, owning no slot, on a port nothing
    // listens on): named, before anything is taken.
    let dead = (26900..26950u16)
        .rev()
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port in 26900-26949");
    server.query(
        "shardgate_meta",
        &format!(
            "INSERT INTO map_shards (id, primary_addr, since) VALUES (1, '127.0.0.1:{dead}', 1)"
        ),
    );
    let out = cli.run(&["backup"], &[]);
    assert_failed(&out, &format!("stanza shard1 (127.0.0.1:{dead}): "));
    server.query("shardgate_meta", "DELETE FROM map_shards WHERE id = 1");
    assert_eq!(points(), "0", "a refused backup recorded a point");
    assert_eq!(backups(), 0, "a refused backup left a pgBackRest backup");

    // The backup, then rows written after its point.
    let started = std::time::Instant::now();
    let out = cli.run(&["backup", "--type", "full"], &[]);
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "backup: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let printed = text(&out.stdout);
    eprintln!("backup took {:.1} s:\n{printed}", took.as_secs_f64());
    server.query(
        "shardgate",
        "INSERT INTO probe SELECT generate_series(101, 150)",
    );
    assert_eq!(points(), "1");
    assert_eq!(backups(), 1);

    // The recorded point: its LSN real (at or before the server's WAL now, past 0/0).
    let name = server.query("shardgate_meta", "SELECT name FROM restore_points");
    assert!(
        printed.contains(&format!("restore point {name} recorded")),
        "{printed}"
    );
    let lsn = server.query(
        "shardgate_meta",
        "SELECT servers -> 0 ->> 'lsn' FROM restore_points",
    );
    let behind = server.query(
        "postgres",
        &format!("SELECT pg_current_wal_lsn() - '{lsn}'::pg_lsn > 0 AND '{lsn}'::pg_lsn > '0/0'"),
    );
    assert_eq!(behind, "t", "point LSN {lsn}");

    // backups list --json shows the point and the stanza's backup.
    let out = cli.run(&["backups", "list", "--json"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(listing["points"][0]["name"], name.as_str());
    assert_eq!(listing["points"][0]["servers"][0]["lsn"], lsn.as_str());
    assert_eq!(listing["points"][0]["servers"][0]["stanza"], STANZA);
    assert_eq!(listing["points"][0]["backup_type"], "full");
    assert_eq!(listing["stanzas"][0]["stanza"], STANZA);
    assert_eq!(listing["stanzas"][0]["backups"][0]["kind"], "full");
    assert!(
        listing["stanzas"][0]["backups"][0]["size_bytes"]
            .as_u64()
            .unwrap()
            > 1_000_000
    );
    let out = cli.run(&["backups", "list"], &[]);
    let table = text(&out.stdout);
    assert!(table.contains(&name) && table.contains(" full "), "{table}");
    eprintln!("{table}");

    // The proof: the stanza restored to the point holds the rows before it, none after.
    let started = std::time::Instant::now();
    let port = server.restore_to(&name);
    eprintln!("restore took {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(
        server.query_on(port, "shardgate", "SELECT count(*) FROM probe"),
        "100"
    );
    assert_eq!(
        server.query_on(port, "shardgate", "SELECT max(id) FROM probe"),
        "100"
    );
    assert_eq!(
        server.query("shardgate", "SELECT count(*) FROM probe"),
        "150"
    );
}
