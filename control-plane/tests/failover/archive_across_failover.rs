//! WAL archiving survives a failover by pg_auto_failover, with one pgBackRest stanza
//! listing both nodes of a private formation (`archive_repo`): archive_mode on both
//! nodes from their first start, the same archive_command (a push to that stanza) set on
//! both with ALTER SYSTEM once the stanza exists. A full backup is taken from node 0,
//! rows written there, node 0's machine lost (kill -9 of keeper and PostgreSQL); once
//! the monitor has promoted node 1, rows are written there, a restore point named, more
//! rows written, and the WAL switched. Then: node 1 archived that WAL (nothing failed),
//! the repository holds timeline 2's history file, `check` passes against node 1, a
//! restore of the pre-failover full backup to the point holds exactly the rows written
//! before it on both nodes (the restore crosses the timeline switch), and an
//! incremental backup after the failover starts on timeline 2 (so on node 1).
//!
//! Needs no shared server: skipped, loudly, only when pg_autoctl or pgbackrest is not
//! installed and `SHARDGATE_REQUIRE_HA` / `SHARDGATE_REQUIRE_BACKUP` is unset.

use std::time::{Duration, Instant};

use test_support::failover::{ha_shard, harness};
use test_support::private::autoctl::Formation;
use test_support::private::placement::Placement;

use crate::archive_repo::{self, Repo};

/// The formation's ports and the restored server's: a range no other test uses.
const PORTS: std::ops::Range<u16> = 26600..26650;
const DB: &str = "archive";
const POINT: &str = "after_failover";

/// Rows `from..=to` of phase `phase`, written on node `node`.
fn write_rows(f: &Formation, node: usize, phase: &str, from: u32, to: u32) {
    f.query(
        node,
        DB,
        &format!(
            "INSERT INTO written (id, phase) SELECT g, '{phase}' FROM generate_series({from}, {to}) g"
        ),
    );
}

/// The ids in `written` on the server at `port`, in order, comma-separated.
const IDS: &str = "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM written";

fn ids(from: u32, to: u32) -> String {
    (from..=to)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn archiving_follows_pg_auto_failover_and_a_restore_crosses_the_timeline_switch() {
    let what = "archiving across a pg_auto_failover failover";
    let Some(pg_autoctl) = ha_shard::pg_autoctl(what) else {
        return;
    };
    let Some(pgbackrest) = archive_repo::installed(what) else {
        return;
    };
    let _alone = harness::ONE_AT_A_TIME.blocking_lock();
    let t0 = Instant::now();
    let at = || format!("[{:>6.1} s]", t0.elapsed().as_secs_f64());
    let repo = Repo::new(pgbackrest);
    // archive_mode needs a restart: on from the first start; the command comes later.
    let f = Formation::start_with(
        pg_autoctl,
        "sg_archive",
        DB,
        Placement {
            ports: PORTS,
            ..Placement::loopback()
        },
        "archive_mode = on\n",
    );
    eprintln!("{} formation up: primary node 0, secondary node 1", at());
    repo.configure(&f);
    repo.run(&["stanza-create"]);
    let command = repo.archive_command();
    for node in 0..2 {
        f.query(
            node,
            "postgres",
            &format!("ALTER SYSTEM SET archive_command = '{command}'"),
        );
        f.query(node, "postgres", "SELECT pg_reload_conf()");
        assert_eq!(
            f.query(node, "postgres", "SHOW archive_mode"),
            "on",
            "node {node}"
        );
        assert_eq!(f.query(node, "postgres", "SHOW archive_command"), command);
    }
    repo.run(&["check"]);
    eprintln!(
        "{} stanza {} (pg1 node 0, pg2 node 1) created, archive_command set, check passed",
        at(),
        archive_repo::STANZA
    );

    let full = repo.run(&["backup", "--type=full"]);
    let info = repo.info();
    let full_label = info["backup"][0]["label"]
        .as_str()
        .expect("a label")
        .to_owned();
    let full_start = info["backup"][0]["archive"]["start"].as_str().unwrap_or("");
    assert!(full_start.starts_with("00000001"), "{full_start}\n{full}");
    eprintln!("{} full backup {full_label} (from WAL {full_start})", at());

    f.query(
        0,
        DB,
        "CREATE TABLE written (id int PRIMARY KEY, phase text NOT NULL)",
    );
    write_rows(&f, 0, "before the failover", 1, 10);
    let since = Instant::now();
    while f.query(1, DB, IDS) != ids(1, 10) {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "rows 1-10 on node 1"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("{} rows 1-10 written on node 0", at());

    let killed = Instant::now();
    f.kill_node(0);
    eprintln!("{} node 0 killed (kill -9 of keeper and PostgreSQL)", at());
    loop {
        let promoted = f.query(1, "postgres", "SELECT pg_is_in_recovery()") == "f";
        let states = f.states();
        if promoted
            && states
                .get(1)
                .is_some_and(|(r, g)| r == g && r == "wait_primary")
        {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "node 1 not promoted within 60 s:\n{}",
            f.show_state()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "{} node 1 promoted by the monitor ({:.1} s after the kill), wait_primary",
        at(),
        killed.elapsed().as_secs_f64()
    );

    write_rows(&f, 1, "after the failover", 11, 20);
    f.query(
        1,
        "postgres",
        &format!("SELECT pg_create_restore_point('{POINT}')"),
    );
    write_rows(&f, 1, "after the point", 21, 30);
    let (last_before, failed_before) = archiver(&f);
    let switched = f.query(1, "postgres", "SELECT pg_walfile_name(pg_switch_wal())");
    assert!(switched.starts_with("00000002"), "timeline 2: {switched}");
    eprintln!(
        "{} rows 11-20, point {POINT}, rows 21-30 written on node 1; WAL switched out of \
         {switched} (last archived then {last_before}, {failed_before} failed)",
        at()
    );
    let since = Instant::now();
    let (last, failed) = loop {
        let (last, failed) = archiver(&f);
        if last.as_str() >= switched.as_str() {
            break (last, failed);
        }
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "node 1 did not archive {switched} within 60 s (last {last}, {failed} failed)"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(failed, 0, "node 1's archive_command failed");
    assert!(last > last_before, "{last} after {last_before}");
    assert!(repo.holds_wal("00000002.history"), "timeline 2's history");
    assert!(repo.holds_wal(&switched), "{switched} in the repository");
    eprintln!(
        "{} node 1 archived {last} ({:.1} s after the switch, 0 failed)",
        at(),
        since.elapsed().as_secs_f64()
    );
    let check = repo.try_run(&["check"]);
    assert!(
        check.status.success(),
        "check against node 1: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    eprintln!("{} check passed against node 1 (node 0 down)", at());

    let restored_port = repo.restore(&full_label, POINT, f.ports[1] + 1..PORTS.end);
    let restored =
        |sql: &str| test_support::private::programs::Programs::find().query(restored_port, DB, sql);
    assert_eq!(
        restored(IDS),
        ids(1, 20),
        "exactly the rows before the point"
    );
    let timeline = restored("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)");
    assert_eq!(timeline, "00000003", "promoted after timeline 2");
    eprintln!(
        "{} full backup {full_label} restored to {POINT}: rows 1-20, timeline {timeline}",
        at()
    );

    let incr = repo.run(&["backup", "--type=incr"]);
    let info = repo.info();
    let backups = info["backup"].as_array().expect("backups");
    let last = backups.last().expect("the incremental backup");
    assert_eq!(last["type"], "incr", "{incr}");
    assert_eq!(last["prior"].as_str(), Some(full_label.as_str()));
    let start = last["archive"]["start"].as_str().unwrap_or("");
    assert!(start.starts_with("00000002"), "on node 1: {start}\n{incr}");
    eprintln!(
        "{} incremental backup {} after the failover (from WAL {start}, on node 1)",
        at(),
        last["label"].as_str().unwrap_or("")
    );
}

/// Node 1's pg_stat_archiver: the last archived WAL file and the failures count.
fn archiver(f: &Formation) -> (String, u64) {
    let row = f.query(
        1,
        "postgres",
        "SELECT coalesce(last_archived_wal, '') || '|' || failed_count FROM pg_stat_archiver",
    );
    let (last, failed) = row.split_once('|').expect("a row");
    (last.to_owned(), failed.parse().expect("a count"))
}
