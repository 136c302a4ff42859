//! Private PostgreSQL primaries for the backup tests and benchmark, with WAL archived
//! by pgBackRest into a private repository: `initdb` in a directory under /tmp, a free
//! port in the test's range (26900-26949 for one server, 26950-26999 for the restore's cluster),
//! trust sign-in on loopback and on its socket (in that directory, for pgbackrest), one
//! stanza per server (`shard0` alone by default), data in `<dir>/<stanza>`.
//! PostgreSQL's programs are found, run (as root, as the `postgres` system user, with
//! pgbackrest) and queried by test-support's `private::programs`, as every private
//! server's are.
//! Every server it started (the primaries, a restored copy) is stopped and the
//! directory removed when it is dropped, however the test ends.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::private::programs::{free_port, path, Programs};

pub const STANZA: &str = "shard0";

/// One private server at a time in this binary: ports are picked free, then bound by
/// the server, so two at once could pick the same one.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub struct Private {
    pub dir: PathBuf,
    /// The first server's port.
    pub port: u16,
    /// Every server: its stanza and port, in the order asked.
    pub servers: Vec<(String, u16)>,
    /// PostgreSQL's programs, and whom they run as.
    programs: Programs,
    /// Data directories of servers started (stopped on drop).
    started: std::cell::RefCell<Vec<PathBuf>>,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Private {
    /// One server, stanza `shard0`, on a port in 26900-26949.
    pub fn start() -> Self {
        Self::start_cluster(&[STANZA], 26900..26950)
    }

    /// initdb of a server per stanza, each on a free port of `ports`; pgBackRest's
    /// configuration written (a section per stanza); every server started.
    pub fn start_cluster(stanzas: &[&str], ports: std::ops::Range<u16>) -> Self {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let dir = PathBuf::from(format!(
            "/tmp/sg-backup-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        ));
        std::fs::create_dir_all(&dir).expect("the test's directory");
        let mut servers: Vec<(String, u16)> = Vec::new();
        for stanza in stanzas {
            let from = servers.last().map_or(ports.start, |(_, p)| p + 1);
            servers.push((stanza.to_string(), free_port(from..ports.end)));
        }
        let me = Private {
            dir,
            port: servers[0].1,
            servers: servers.clone(),
            programs: Programs::find(),
            started: Default::default(),
            _turn: turn,
        };
        me.own(&me.dir);
        let d = me.dir.display();
        let mut conf = format!(
            "[global]\nrepo1-path={d}/repo\nrepo1-retention-full=2\ncompress-type=lz4\n\
             compress-level=1\nlock-path={d}/lock\nlog-path={d}/log\nlog-level-file=off\n\
             start-fast=y\narchive-timeout=30\n"
        );
        for (stanza, port) in &servers {
            conf += &format!(
                "\n[{stanza}]\npg1-path={d}/{stanza}\npg1-port={port}\npg1-socket-path={d}\n\
                 pg1-user=postgres\n"
            );
        }
        me.write("pgbackrest.conf", &conf);
        for sub in ["repo", "lock", "log"] {
            std::fs::create_dir_all(me.dir.join(sub)).expect("a pgBackRest directory");
        }
        for (stanza, port) in &servers {
            me.init_server(stanza, *port);
        }
        me
    }

    fn init_server(&self, stanza: &str, port: u16) {
        let me = self;
        let data = me.dir.join(stanza);
        me.programs.initdb(&data);
        let d = me.dir.display();
        me.write(
            &format!("{stanza}/postgresql.auto.conf"),
            &format!(
                "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{d}'\n\
                 wal_level = replica\nmax_wal_senders = 4\nmax_prepared_transactions = 8\n\
                 max_wal_size = '128MB'\narchive_mode = on\narchive_command = 'pgbackrest --config={d}/pgbackrest.conf \
                 --stanza={stanza} archive-push %p'\n"
            ),
        );
        me.own(&me.dir);
        me.start_server(&data, &[]);
    }

    /// A streaming replica of the server of `stanza` (`pg_basebackup -R`), started on
    /// a free port of `ports`; its port.
    pub fn add_replica(&self, stanza: &str, ports: std::ops::Range<u16>) -> u16 {
        let data = self.dir.join(format!("{stanza}-replica"));
        let primary = self.port_of(stanza).to_string();
        self.pg(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary,
                "-U",
                "postgres",
                "-D",
                path(&data),
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
                "--no-sync",
            ],
        );
        let port = free_port(ports);
        self.start_server(&data, &["-p", &port.to_string()]);
        port
    }

    /// Stops the server of `stanza` (fast).
    pub fn stop(&self, stanza: &str) {
        let data = self.dir.join(stanza);
        self.pg("pg_ctl", &["stop", "-m", "fast", "-w", "-D", path(&data)]);
    }

    /// The port of the server of `stanza`.
    pub fn port_of(&self, stanza: &str) -> u16 {
        self.servers
            .iter()
            .find(|(s, _)| s == stanza)
            .map(|(_, p)| *p)
            .expect("a stanza of this cluster")
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("pgbackrest.conf")
    }

    /// pgbackrest with this configuration, as the servers' user; its output.
    pub fn pgbackrest(&self, args: &[&str]) -> Output {
        let config = format!("--config={}", self.config().display());
        let mut all = vec![config.as_str()];
        all.extend_from_slice(args);
        self.run_as(Path::new("pgbackrest"), &all)
    }

    /// The labels of the backups pgBackRest's `info` counts as complete for the first
    /// stanza (a backup killed part-way is not among them).
    pub fn backup_labels(&self) -> Vec<String> {
        let info = self.pgbackrest(&["--output=json", "info"]);
        let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap_or_default();
        v[0]["backup"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| b["label"].as_str().map(str::to_owned))
            .collect()
    }

    /// One query's text output (`psql -At`) on the server at `port`.
    pub fn query_on(&self, port: u16, db: &str, sql: &str) -> String {
        self.programs.query(port, db, sql)
    }

    pub fn query(&self, db: &str, sql: &str) -> String {
        self.query_on(self.port, db, sql)
    }

    /// Restores the stanza to the named point into a new data directory, starts it on
    /// a free port (archiving off: it must not push into the repository) and waits for
    /// it to leave recovery; its port.
    pub fn restore_to(&self, point: &str) -> u16 {
        let target = self.dir.join("restored");
        std::fs::create_dir_all(&target).expect("the scratch data directory");
        self.own(&target);
        let _ = Command::new("chmod").arg("700").arg(&target).status();
        let pg1 = format!("--pg1-path={}", target.display());
        let point = format!("--target={point}");
        let stanza = format!("--stanza={STANZA}");
        check(
            "pgbackrest restore",
            self.pgbackrest(&[
                &stanza,
                "restore",
                "--type=name",
                &point,
                &pg1,
                "--target-action=promote",
            ]),
        );
        let last = self
            .servers
            .iter()
            .map(|(_, p)| *p)
            .max()
            .unwrap_or(self.port);
        let port = free_port(last + 1..26950);
        let port_arg = port.to_string();
        self.start_server(&target, &["-p", &port_arg, "-c", "archive_mode=off"]);
        for _ in 0..300 {
            if self.query_on(port, "postgres", "SELECT pg_is_in_recovery()") == "f" {
                return port;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the restored server never left recovery");
    }

    fn start_server(&self, data: &Path, extra: &[&str]) {
        let name = data.file_name().unwrap().to_string_lossy().to_string();
        let log = self.dir.join(format!("{name}.log"));
        let options = extra.join(" ");
        self.started.borrow_mut().push(data.to_path_buf());
        let out = self.run_as(
            &self.programs.bin.join("pg_ctl"),
            &[
                "start",
                "-w",
                "-t",
                "120",
                "-D",
                path(data),
                "-l",
                path(&log),
                "-o",
                &options,
            ],
        );
        if !out.status.success() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            panic!(
                "{name} did not start: {}\n{text}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.dir.join(rel), text).expect("write a file of the test's");
    }

    fn own(&self, dir: &Path) {
        self.programs.own(dir);
    }

    fn pg(&self, program: &str, args: &[&str]) -> Output {
        check(program, self.run_as(&self.programs.bin.join(program), args))
    }

    fn run_as(&self, program: &Path, args: &[&str]) -> Output {
        self.programs
            .command(program)
            .args(args)
            .output()
            .expect("run a program")
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        for data in self.started.borrow().iter().rev() {
            self.programs.stop_at_once(data);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn check(what: &str, out: Output) -> Output {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Whether pgbackrest is installed; when it is not, the test fails if
/// SHARDGATE_REQUIRE_BACKUP=1 (`./setup.sh test`), else it is skipped (loudly).
pub fn pgbackrest_present() -> bool {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([PathBuf::from("/usr/bin")])
        .any(|d| d.join("pgbackrest").is_file());
    if !found {
        assert!(
            std::env::var("SHARDGATE_REQUIRE_BACKUP").as_deref() != Ok("1"),
            "pgbackrest is not installed, and SHARDGATE_REQUIRE_BACKUP=1 requires the backup tests: apt-get install pgbackrest (./setup.sh up does)"
        );
        eprintln!("SKIPPED: pgbackrest is not installed (apt-get install pgbackrest)");
    }
    found
}
