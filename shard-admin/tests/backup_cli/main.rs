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
mod load;
mod private;
mod repository;
mod restore;
mod under_load;

use std::path::PathBuf;
use std::process::{Command, Output};

use private::{Private, STANZA};
use shard_manager::{config, ClusterSettings};

/// The setting naming the HA manager's monitor, in the environment.
const HA_MONITOR: &str = "SHARDGATE__FAILOVER__HA_MONITOR";

/// The CLI run against the private server: its overlay, its metadata address and
/// pgBackRest configuration.
struct Cli {
    overlay: PathBuf,
    env: Vec<(String, String)>,
    meta: String,
    config: String,
    /// The private Redis (url, prefix), when the test has one.
    cache: Option<(String, String)>,
}

impl Cli {
    /// One server: the only shard's primary, and the metadata database beside it.
    fn for_server(server: &Private) -> Self {
        Self::new(
            server,
            &server.address(),
            &[(server.address(), vec![])],
            None,
        )
    }

    /// A cluster of private servers: the metadata server `meta`, a shard per primary
    /// (with its replicas).
    fn new(
        server: &Private,
        meta: &str,
        shards: &[(String, Vec<String>)],
        cache: Option<(String, String)>,
    ) -> Self {
        let overlay = server.dir.join("shardgate.toml");
        let mut toml = format!(
            "[metadata]\naddress = \"{meta}\"\ndbname = \"shardgate_meta\"\n\n\
             [database]\ndbname = \"shardgate\"\n"
        );
        for (p, replicas) in shards {
            toml += &format!("\n[[shards]]\nprimary = \"{p}\"\nreplicas = {replicas:?}\n");
        }
        std::fs::write(&overlay, toml).expect("write the overlay");
        let config = server.config().display().to_string();
        let mut env = vec![
            ("SHARDGATE__METADATA__ADDRESS".into(), meta.to_owned()),
            (
                "SHARDGATE__BACKUP__PGBACKREST_CONFIG".into(),
                config.clone(),
            ),
            // Never the shared topology's Redis: the test's own, or none.
            (
                "SHARDGATE__CACHE__ENABLED".into(),
                cache.is_some().to_string(),
            ),
        ];
        if let Some((url, prefix)) = &cache {
            env.push(("SHARDGATE__CACHE__URL".into(), url.clone()));
            env.push(("SHARDGATE__CACHE__PREFIX".into(), prefix.clone()));
        }
        Cli {
            overlay,
            env,
            meta: meta.to_owned(),
            config,
            cache,
        }
    }

    /// The settings the CLI reads (the environment's metadata address, pgBackRest
    /// configuration and cache replaced by the private ones, as the CLI's are).
    fn settings(&self, _server: &Private) -> ClusterSettings {
        let mut settings: ClusterSettings =
            config::load(Some(&self.overlay)).expect("the private server's settings");
        settings.metadata.address = self.meta.clone();
        settings.backup.pgbackrest_config = self.config.clone();
        settings.cache.enabled = self.cache.is_some();
        settings.failover.ha_monitor = None;
        if let Some((url, prefix)) = &self.cache {
            settings.cache.url = url.clone();
            settings.cache.prefix = prefix.clone();
        }
        settings
    }

    fn run(&self, args: &[&str], more_env: &[(&str, &str)]) -> Output {
        self.command(args, more_env)
            .output()
            .expect("run shard-admin")
    }

    /// The command `run` runs, to be spawned by a test that kills it.
    fn command(&self, args: &[&str], more_env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shard-admin"));
        cmd.arg("--config")
            .arg(&self.overlay)
            .args(args)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            // Private servers: no HA manager runs them, whatever `./setup.sh env` said of
            // the shared topology's (a test names one in `more_env` to see the refusal).
            .env_remove(HA_MONITOR)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(more_env.iter().copied())
            .env("NO_COLOR", "1");
        cmd
    }
}

/// The application role and both databases on the private server, the shard migrated
/// and the map seeded (version 1).
fn prepare(server: &Private, settings: &ClusterSettings) {
    prepare_on(server, settings, &[server.port], server.port);
}

/// The application role on every server, the shard database on each of `shards`, the
/// metadata database on `meta`; the shards migrated and the map seeded (version 1).
fn prepare_on(server: &Private, settings: &ClusterSettings, shards: &[u16], meta: u16) {
    let mut ports = shards.to_vec();
    ports.push(meta);
    ports.dedup();
    for port in &ports {
        server.query_on(
            *port,
            "postgres",
            &format!("CREATE ROLE \"{}\" LOGIN SUPERUSER", settings.database.user),
        );
    }
    for port in shards {
        server.query_on(*port, "postgres", "CREATE DATABASE shardgate");
    }
    server.query_on(meta, "postgres", "CREATE DATABASE shardgate_meta");
    shard_admin::migrate_all(settings).expect("migrate the shard");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(control_plane::map::change::init(settings))
        .expect("init the map");
}

/// [`prepare_on`], then a pgBackRest stanza created for each server of a cluster
/// started with these `stanzas`.
fn prepare_with_stanzas(
    cluster: &Private,
    settings: &ClusterSettings,
    (shards, meta): (&[u16], u16),
    stanzas: &[&str],
) {
    prepare_on(cluster, settings, shards, meta);
    for stanza in stanzas {
        private::check(
            "stanza-create",
            cluster.pgbackrest(&[&format!("--stanza={stanza}"), "stanza-create"]),
        );
    }
}

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
    let cli = Cli::for_server(&server);
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
