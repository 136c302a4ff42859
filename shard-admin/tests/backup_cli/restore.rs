//! `shard-admin restore --point NAME` of a private cluster of three servers (two
//! shard primaries and the metadata server, a stanza each, ports 26950-26999), a
//! streaming replica of shard 0, and a private Redis: the replica is stopped (it holds
//! rows from after the point); rows written before a cluster restore point are back,
//! none written after it; a transaction across both shards decided after it is on
//! neither; the map changed after it is the point's again and agrees with the shards;
//! every cache epoch is raised by 1,000,000 and retired in Redis; the point is still
//! listed. Without `--yes`, and on every refusal, nothing changes: the same servers run,
//! with the same data. A second restore to the same point, with the metadata server
//! stopped, works from the point's name and undoes what was written since the first.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use control_plane::txn::MetaLog;
use shard_manager::cluster::txn::log::{Decision, DecisionLog};
use shard_manager::routing::ShardId;

use crate::private::{self, Private};
use crate::{assert_fails, ha_manager, prepare_with_stanzas, text, Cli, SHARD_ADMIN};

const PREFIX: &str = "sgrestoretest";

/// A private Redis on a port of the test's range, stopped when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir", "/tmp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (./setup.sh up installs it)");
        let redis = Redis { child, port };
        for _ in 0..100 {
            if redis.cli(&["ping"]) == "PONG" {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the private redis-server on {port} did not answer");
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        text(&out.stdout).trim().to_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_restore_brings_every_server_back_to_the_point() {
    if !private::pgbackrest_present() {
        return;
    }
    let cluster = Private::start_cluster(&["shard0", "shard1", "meta"], 26950..26990);
    let (p0, p1, pm) = (
        cluster.port_of("shard0"),
        cluster.port_of("shard1"),
        cluster.port_of("meta"),
    );
    let redis_port = (26990..27000u16)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port in 26990-26999");
    let redis = Redis::start(redis_port);
    let r0 = cluster.add_replica("shard0", pm + 1..26990);
    let addr = |p: u16| format!("127.0.0.1:{p}");
    let cli = Cli::new(
        SHARD_ADMIN,
        &cluster,
        &addr(pm),
        &[(addr(p0), vec![addr(r0)]), (addr(p1), vec![])],
        Some((format!("redis://127.0.0.1:{redis_port}"), PREFIX.into())),
    );
    let settings = cli.settings(&cluster);
    prepare_with_stanzas(
        &cluster,
        &settings,
        (&[p0, p1], pm),
        &["shard0", "shard1", "meta"],
    );
    let shard = |p: u16, sql: &str| cluster.query_on(p, "shardgate", sql);
    let meta = |sql: &str| cluster.query_on(pm, "shardgate_meta", sql);
    for p in [p0, p1] {
        shard(
            p,
            "CREATE TABLE probe (id int PRIMARY KEY); INSERT INTO probe SELECT generate_series(1, 100)",
        );
    }
    // A gateway that is not live (heard from an hour ago) but read a cache of its own.
    meta(
        "INSERT INTO gateways (id, address, host, pid, binary_version, map_version, started_at, cache_prefix, seen_at)
         VALUES (gen_random_uuid(), '127.0.0.1:1', 'old', 1, 'test', 1, now() - interval '2 hours', 'sgoldgateway', now() - interval '1 hour')",
    );
    let epochs_at_point: Vec<i64> = [p0, p1]
        .iter()
        .map(|p| {
            shard(*p, "SELECT epoch FROM shardgate_cache")
                .parse()
                .unwrap()
        })
        .collect();

    // The backup and its point.
    let out = cli.run(&["backup", "--type", "full"], &[]);
    assert!(
        out.status.success(),
        "backup: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let name = meta("SELECT name FROM restore_points");
    let map_at_point = meta("SELECT version FROM map_state");
    assert_eq!(map_at_point, "1");

    // After the point: more rows on both shards, a transaction on both decided and
    // committed, the map changed (slot 0 handed to shard 1).
    for p in [p0, p1] {
        shard(p, "INSERT INTO probe SELECT generate_series(101, 150)");
        shard(
            p,
            "BEGIN; INSERT INTO probe VALUES (1000); PREPARE TRANSACTION 'sg_after_point'",
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let log = Arc::new(MetaLog::new(settings.clone()));
    let decided = rt.block_on(log.settle(
        "sg_after_point",
        Decision::Commit,
        &[ShardId(0), ShardId(1)],
    ));
    assert_eq!(decided.expect("the decision"), Decision::Commit);
    for p in [p0, p1] {
        shard(p, "COMMIT PREPARED 'sg_after_point'");
        assert_eq!(shard(p, "SELECT count(*) FROM probe WHERE id = 1000"), "1");
    }
    let out = cli.run(&["map", "assign-slots", "0=1"], &[]);
    assert!(out.status.success(), "assign: {}", text(&out.stderr));
    assert_eq!(meta("SELECT version FROM map_state"), "2");
    assert_eq!(
        shard(p1, "SELECT count(*) FROM shardgate_slots WHERE slot = 0"),
        "1"
    );

    // What "nothing changed" means: every server still the same process, the same rows.
    let state = || {
        let mut s = Vec::new();
        for p in [p0, p1, pm, r0] {
            s.push(cluster.query_on(p, "postgres", "SELECT pg_postmaster_start_time()"));
        }
        for p in [p0, p1] {
            s.push(shard(p, "SELECT count(*) FROM probe"));
        }
        s.push(meta("SELECT version FROM map_state"));
        s
    };
    let before = state();
    assert_eq!(before[4], "151");
    let streamed = || {
        shard(
            p0,
            "SELECT count(*) FROM pg_stat_replication WHERE replay_lsn = pg_current_wal_lsn()",
        )
    };
    for _ in 0..100 {
        if streamed() == "1" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        shard(r0, "SELECT count(*) FROM probe"),
        "151",
        "the replica"
    );

    // Refusals.
    ha_manager::refusal_and_plan(&cli, &name);
    let out = cli.run(&["restore", "--point", "sg_20200101T000000Z", "--yes"], &[]);
    assert_fails(&out, "unknown restore point \"sg_20200101T000000Z\"");
    let out = cli.run(
        &["restore", "--point", &name, "--yes"],
        &[("SHARDGATE__BACKUP__PROGRAM", "/nonexistent/bin/pgbackrest")],
    );
    assert_fails(
        &out,
        "pgbackrest is not installed (/nonexistent/bin/pgbackrest not found)",
    );
    let partial = cluster.dir.join("partial.conf");
    let full = std::fs::read_to_string(cluster.config()).unwrap();
    let cut = full.find("[shard1]").unwrap();
    let rest = &full[cut..];
    let next = rest[1..].find('[').map_or(rest.len(), |i| i + 1);
    std::fs::write(&partial, format!("{}{}", &full[..cut], &rest[next..])).unwrap();
    let out = cli.run(
        &["restore", "--point", &name, "--yes"],
        &[(
            "SHARDGATE__BACKUP__PGBACKREST_CONFIG",
            partial.to_str().unwrap(),
        )],
    );
    assert_fails(
        &out,
        &format!(
            "stanza shard1 ({}): the stanza is missing from pgBackRest's configuration",
            addr(p1)
        ),
    );
    meta(
        "INSERT INTO gateways (id, address, host, pid, binary_version, map_version, started_at, seen_at)
         VALUES (gen_random_uuid(), '127.0.0.1:26998', 'live', 2, 'test', 2, now(), now())",
    );
    let out = cli.run(&["restore", "--point", &name, "--yes"], &[]);
    assert_fails(&out, "stop the gateways first: 1 heard from within");
    assert_fails(&out, "127.0.0.1:26998");
    meta("DELETE FROM gateways WHERE host = 'live'");
    meta(
        "INSERT INTO moves (kind, source, target, slots, phase, map_before, actor) \
         VALUES ('move', 0, 1, '{1}', 'copy', 2, 'test')",
    );
    let out = cli.run(&["restore", "--point", &name, "--yes"], &[]);
    assert_fails(
        &out,
        "slot move 1 (shard-0 to shard-1, phase copy) is active",
    );
    meta("UPDATE moves SET phase = 'aborted'");
    assert_eq!(state(), before, "a refused restore changed something");

    // The plan: every stanza and its data directory, the point's time; nothing changed.
    let out = cli.run(&["restore", "--point", &name], &[]);
    let plan = text(&out.stdout);
    assert!(out.status.success(), "plan: {plan}{}", text(&out.stderr));
    eprintln!("{plan}");
    assert!(
        plan.contains(&format!("restore point {name} taken ")),
        "{plan}"
    );
    assert!(plan.contains(", map version 1"), "{plan}");
    for (stanza, p) in [("shard0", p0), ("shard1", p1), ("meta", pm)] {
        let line = format!("{}/{stanza}", cluster.dir.display());
        assert!(
            plan.contains(&line) && plan.contains(&addr(p)),
            "{stanza}: {plan}"
        );
    }
    assert!(plan.contains("nothing was changed"), "{plan}");
    let replica_line = format!(
        "shard-0  {:<21} {}/shard0-replica",
        addr(r0),
        cluster.dir.display()
    );
    assert!(plan.contains(&replica_line), "{replica_line:?} in {plan}");
    assert_eq!(state(), before, "the plan changed something");

    // The restore.
    let started = Instant::now();
    let out = cli.run(&["restore", "--point", &name, "--yes"], &[]);
    let took = started.elapsed();
    let printed = text(&out.stdout);
    assert!(
        out.status.success(),
        "restore: {printed}{}",
        text(&out.stderr)
    );
    eprintln!(
        "restore of 3 servers took {:.1} s:\n{printed}",
        took.as_secs_f64()
    );

    for (i, p) in [p0, p1].into_iter().enumerate() {
        assert_eq!(shard(p, "SELECT count(*) FROM probe"), "100", "shard{i}");
        assert_eq!(shard(p, "SELECT max(id) FROM probe"), "100", "shard{i}");
        assert_eq!(
            shard(p, "SELECT count(*) FROM pg_prepared_xacts"),
            "0",
            "shard{i}"
        );
        let epoch: i64 = shard(p, "SELECT epoch FROM shardgate_cache")
            .parse()
            .unwrap();
        assert_eq!(epoch, epochs_at_point[i] + 1_000_000, "shard{i}");
        for prefix in [PREFIX, "sgoldgateway"] {
            assert_eq!(
                redis.cli(&["get", &format!("{prefix}:{i}:below")]),
                epoch.to_string(),
                "shard{i} under {prefix}"
            );
        }
        assert_eq!(shard(p, "SELECT pg_is_in_recovery()"), "f");
        shard(p, "INSERT INTO probe VALUES (2000)");
    }
    assert_eq!(
        meta("SELECT count(*) FROM txn_log WHERE txid = 'sg_after_point'"),
        "0"
    );
    assert_eq!(meta("SELECT version FROM map_state"), "1");
    assert_eq!(
        shard(p0, "SELECT count(*) FROM shardgate_slots WHERE slot = 0"),
        "1"
    );
    assert_eq!(
        shard(p1, "SELECT count(*) FROM shardgate_slots WHERE slot = 0"),
        "0"
    );
    let listed = meta(&format!(
        "SELECT count(*) FROM restore_points WHERE name = '{name}'"
    ));
    assert_eq!(listed, "1", "the point is listed after the restore");
    assert!(
        printed.contains(&format!("cluster restored to {name} in ")),
        "{printed}"
    );
    assert_eq!(printed.matches(": consistent").count(), 2, "{printed}");
    assert!(!printed.contains("INCONSISTENT"), "{printed}");
    assert!(
        printed.contains("shard-0: cache epoch 0 -> 1000000"),
        "{printed}"
    );
    // The replica, holding rows from after the point, is stopped, and how to rebuild it
    // is said (these servers were not made by setup.sh: no incarnation file).
    assert!(
        std::net::TcpStream::connect(addr(r0)).is_err(),
        "the replica still runs"
    );
    assert!(
        printed.contains(&format!("replicas stopped: {} of shard-0", addr(r0))),
        "{printed}"
    );
    assert!(printed.contains("pg_basebackup -R"), "{printed}");

    // Again, into a cluster whose metadata server is stopped. Its safety checks (live
    // gateways, active moves) cannot run: refused, nothing changed, the fix named.
    cluster.stop("meta");
    let refused = cli.run(&["restore", "--point", &name, "--yes"], &[]);
    let why = text(&refused.stderr);
    assert!(!refused.status.success(), "restore without its checks ran");
    assert!(
        why.contains("--force") && why.contains("live gateways"),
        "{why}"
    );
    for p in [p0, p1] {
        assert_ne!(
            shard(p, "SELECT count(*) FROM probe"),
            "100",
            "nothing restored"
        );
    }
    // With --force: the point's time is read from its name, the rows written since the
    // first restore are gone again (a restore onto the new timeline reaches a point of
    // the old one), the map is consistent.
    let out = cli.run(&["restore", "--point", &name, "--yes", "--force"], &[]);
    let again = text(&out.stdout);
    assert!(
        out.status.success(),
        "restore again: {again}{}",
        text(&out.stderr)
    );
    eprintln!("{again}");
    assert!(again.contains("note: the metadata database at "), "{again}");
    assert!(
        again.contains(&format!("cluster restored to {name} in ")),
        "{again}"
    );
    assert_eq!(again.matches(": consistent").count(), 2, "{again}");
    for p in [p0, p1] {
        assert_eq!(shard(p, "SELECT count(*) FROM probe"), "100");
    }
    assert_eq!(meta("SELECT version FROM map_state"), "1");
}
