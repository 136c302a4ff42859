//! A pgBackRest repository of the test's own for a pg_auto_failover formation: one
//! stanza (`shard0`) listing both nodes (pg1 = node 0, pg2 = node 1, each through its
//! Unix socket as `postgres`), so `backup` and `check` find whichever node is primary
//! and `archive-push` from either node goes to the same stanza. Everything lives in a
//! directory under /tmp owned by `postgres`; pgbackrest runs as `postgres`. A server
//! restored from the repository runs from that directory too; it is stopped and the
//! directory removed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use test_support::private::autoctl::Formation;
use test_support::private::programs::{free_port, path, run, Programs};

/// The formation's stanza, named as setup.sh names a shard's.
pub const STANZA: &str = "shard0";

/// pgbackrest for the test `what`; None, loudly, when it is not installed and
/// `SHARDGATE_REQUIRE_BACKUP` is unset (a failure when it is set).
pub fn installed(what: &str) -> Option<PathBuf> {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("pgbackrest"))
        .find(|p| p.is_file());
    if found.is_none() {
        if std::env::var_os("SHARDGATE_REQUIRE_BACKUP").is_some() {
            panic!("SHARDGATE_REQUIRE_BACKUP is set but pgbackrest is not installed (apt-get install pgbackrest, or ./setup.sh up)");
        }
        eprintln!(
            "\n!!!!!!!!!!\n!!! SKIPPED: pgbackrest is not installed, so {what} was NOT \
             tested.\n!!! apt-get install pgbackrest (./setup.sh up does); set \
             SHARDGATE_REQUIRE_BACKUP=1 to make this a failure.\n!!!!!!!!!!\n"
        );
    }
    found
}

pub struct Repo {
    pub dir: PathBuf,
    programs: Programs,
    pgbackrest: PathBuf,
    /// The restored server's data directory, once started (stopped on drop).
    restored: Mutex<Option<PathBuf>>,
}

impl Repo {
    /// The test's directory, with pgBackRest's own folders; no configuration yet.
    pub fn new(pgbackrest: PathBuf) -> Self {
        let dir = test_support::private::programs::scratch_dir("archive");
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["repo", "lock", "log"] {
            std::fs::create_dir_all(dir.join(sub)).expect("a pgBackRest directory");
        }
        let repo = Repo {
            dir,
            programs: Programs::find(),
            pgbackrest,
            restored: Mutex::new(None),
        };
        repo.programs.own(&repo.dir);
        repo
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("pgbackrest.conf")
    }

    /// The archive_command of every node: a push to the one stanza. PostgreSQL runs it
    /// in the node's data directory, and pgBackRest takes a relative `%p` from `pg1-path`
    /// (refusing another directory), so `pg1-path` is the node's own: the same command
    /// on every node, whichever one a clone or a rewind copied it from.
    pub fn archive_command(&self) -> String {
        format!(
            "{} --config={} --stanza={STANZA} --pg1-path=\"$PWD\" archive-push %p",
            self.pgbackrest.display(),
            self.config().display()
        )
    }

    /// The configuration: the stanza lists node 0 as pg1 and node 1 as pg2.
    pub fn configure(&self, formation: &Formation) {
        let d = self.dir.display();
        let mut conf = format!(
            "[global]\nrepo1-path={d}/repo\nrepo1-retention-full=2\ncompress-type=lz4\n\
             compress-level=1\nlock-path={d}/lock\nlog-path={d}/log\nlog-level-file=off\n\
             log-level-console=info\n\
             start-fast=y\narchive-timeout=30\n\n[{STANZA}]\n"
        );
        for node in 0..2 {
            let socket = formation.query(node, "postgres", "SHOW unix_socket_directories");
            let socket = socket
                .split(',')
                .next()
                .unwrap_or("")
                .trim()
                .replace('"', "");
            let n = node + 1;
            conf += &format!(
                "pg{n}-path={}\npg{n}-port={}\npg{n}-socket-path={socket}\npg{n}-user=postgres\n",
                formation.node_data(node).display(),
                formation.ports[node],
            );
        }
        std::fs::write(self.config(), conf).expect("write pgbackrest.conf");
        self.programs.own(&self.dir);
    }

    /// pgbackrest with this configuration and the stanza, as `postgres`.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.programs.command(&self.pgbackrest);
        cmd.arg(format!("--config={}", self.config().display()))
            .arg(format!("--stanza={STANZA}"))
            .args(args);
        cmd
    }

    /// pgbackrest's output, whatever its status.
    pub fn try_run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run pgbackrest")
    }

    /// pgbackrest's stdout; panics with its output when it failed.
    pub fn run(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&run(&mut self.command(args)).stdout).into_owned()
    }

    /// The stanza's entry of `pgbackrest info --output=json`.
    pub fn info(&self) -> serde_json::Value {
        let text = self.run(&["--log-level-console=warn", "--output=json", "info"]);
        let all: serde_json::Value = serde_json::from_str(&text).expect("info's JSON");
        all[0].clone()
    }

    /// Whether the repository holds the WAL file (segment or history file) `name`.
    pub fn holds_wal(&self, name: &str) -> bool {
        let archive = self.dir.join("repo/archive").join(STANZA);
        walk(&archive).iter().any(|f| {
            f.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(name))
        })
    }

    /// Restores backup `set` to the restore point `point` into a scratch directory,
    /// starts it on a free port of `ports` (archiving off: it must not push into the
    /// repository; no synchronous standby to wait for), and waits for it to leave
    /// recovery; its port.
    pub fn restore(&self, set: &str, point: &str, ports: std::ops::Range<u16>) -> u16 {
        let data = self.dir.join("restored");
        std::fs::create_dir_all(&data).expect("the scratch data directory");
        self.programs.own(&data);
        std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .expect("chmod 700 the scratch data directory");
        self.run(&[
            "restore",
            &format!("--set={set}"),
            "--type=name",
            &format!("--target={point}"),
            "--target-action=promote",
            &format!("--pg1-path={}", data.display()),
        ]);
        let port = free_port(ports);
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c archive_mode=off \
             -c synchronous_standby_names= -c unix_socket_directories={}",
            self.dir.display()
        );
        *self.restored.lock().unwrap() = Some(data.clone());
        let log = self.dir.join("restored.log");
        let started = self
            .programs
            .command(&self.programs.bin.join("pg_ctl"))
            .args([
                "start",
                "-w",
                "-t",
                "120",
                "-D",
                path(&data),
                "-l",
                path(&log),
            ])
            .args(["-o", &options])
            .output()
            .expect("run pg_ctl");
        assert!(
            started.status.success(),
            "the restored server did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let since = Instant::now();
        while self
            .programs
            .query(port, "postgres", "SELECT pg_is_in_recovery()")
            != "f"
        {
            assert!(
                since.elapsed() < Duration::from_secs(60),
                "the restored server never left recovery: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        port
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

impl Drop for Repo {
    fn drop(&mut self) {
        if let Some(data) = self.restored.lock().unwrap().take() {
            self.programs.stop_at_once(&data);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
