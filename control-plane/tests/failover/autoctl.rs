//! A pg_auto_failover formation of the test's own: one monitor and two nodes (each a
//! keeper, `pg_autoctl run`, with its PostgreSQL), on free ports in 26850-26899 (or a
//! range of the test's), data and pg_autoctl's own files (XDG folders) in a temporary
//! directory owned by `postgres`. Synchronous replication is pg_auto_failover's
//! default with one standby (`ANY 1 (pgautofailover_standby_N)`); the monitor's
//! checks are cut to 1 s and a node unhealthy after 2 s, as `HA=1 ./setup.sh up` cuts
//! them. Nothing shared is touched; every process is stopped and the directory
//! removed when dropped.
//!
//! Each keeper runs in a process group of its own, with its PostgreSQL under it, so
//! [`Formation::kill_node`] is the loss of a whole machine: `kill -9` of the group.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::programs::{free_port, path, run, Programs};

/// The monitor's timings (milliseconds): checks every second, a node unhealthy after
/// 2 s without a report or a check, and the old primary given 3 s to demote itself
/// (its keeper does after `NETWORK_PARTITION_S` without the monitor) before the
/// standby is promoted.
const MONITOR_SETTINGS: &[(&str, u32)] = &[
    ("health_check_period", 1000),
    ("health_check_timeout", 1000),
    ("health_check_max_retries", 1),
    ("health_check_retry_delay", 500),
    ("node_considered_unhealthy_timeout", 2000),
    ("startup_grace_period", 2000),
    ("primary_demote_timeout", 3000),
];

/// Seconds a keeper that reaches neither the monitor nor a standby waits before it
/// demotes its own primary.
const NETWORK_PARTITION_S: &str = "2";

/// pg_autoctl, when installed (Debian's `pg-auto-failover-cli`).
pub fn installed() -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("pg_autoctl"))
        .find(|p| p.exists())
}

pub struct Formation {
    dir: PathBuf,
    programs: Programs,
    autoctl: PathBuf,
    pub monitor_port: u16,
    /// The nodes' PostgreSQL ports; node 0 is created first and starts as primary.
    pub ports: [u16; 2],
    /// The monitor's keeper, then node 0's and node 1's, while they run.
    keepers: Mutex<[Option<Child>; 3]>,
    /// Lines added to node 0's postgresql.auto.conf before its first start (node 1
    /// is cloned with them).
    conf: String,
}

/// The formation's name on the monitor (one formation per shard, as in setup.sh).
const FORMATION: &str = "shard0";

impl Formation {
    /// Starts the monitor, node 0 (the primary, with `user` as a superuser and the
    /// database `dbname`), then node 1, and waits until node 1 is a synchronous
    /// secondary.
    pub fn start(autoctl: PathBuf, user: &str, dbname: &str) -> Self {
        Self::start_with(autoctl, user, dbname, 26850..26900, "")
    }

    /// As [`Formation::start`], on free ports of `ports`, with `conf` (settings lines)
    /// in node 0's postgresql.auto.conf from its first start, hence in node 1's too.
    pub fn start_with(
        autoctl: PathBuf,
        user: &str,
        dbname: &str,
        ports: std::ops::Range<u16>,
        conf: &str,
    ) -> Self {
        let dir = std::env::temp_dir().join(format!("sg-autoctl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["config", "data", "run"] {
            std::fs::create_dir_all(dir.join(sub)).expect("create the test's directory");
        }
        let programs = Programs::find();
        programs.own(&dir);
        let monitor_port = free_port(ports.clone());
        let node0 = free_port(monitor_port + 1..ports.end);
        let node1 = free_port(node0 + 1..ports.end);
        let f = Formation {
            dir,
            programs,
            autoctl,
            monitor_port,
            ports: [node0, node1],
            keepers: Mutex::new([None, None, None]),
            conf: conf.to_owned(),
        };
        let started = Instant::now();
        f.autoctl_ok(&[
            "create",
            "monitor",
            "--pgdata",
            path(&f.pgdata(0)),
            "--pgport",
            &monitor_port.to_string(),
            "--hostname",
            "127.0.0.1",
            "--auth",
            "trust",
            "--no-ssl",
            "--pgctl",
            path(&f.programs.bin.join("pg_ctl")),
        ]);
        f.spawn_keeper(0);
        f.wait_accepting(monitor_port);
        eprintln!(
            "[{:?}] pg_auto_failover: the monitor is up",
            started.elapsed()
        );
        for (name, value) in MONITOR_SETTINGS {
            f.programs.query(
                monitor_port,
                "pg_auto_failover",
                &format!("ALTER SYSTEM SET pgautofailover.{name} = {value}"),
            );
        }
        f.programs
            .query(monitor_port, "pg_auto_failover", "SELECT pg_reload_conf()");
        f.autoctl_ok(&[
            "create",
            "formation",
            "--pgdata",
            path(&f.pgdata(0)),
            "--formation",
            FORMATION,
            "--kind",
            "pgsql",
            "--dbname",
            dbname,
        ]);
        f.create_node(1, dbname);
        f.spawn_keeper(1);
        f.wait_states(&["single"], Duration::from_secs(30));
        f.wait_accepting(node0);
        eprintln!(
            "[{:?}] pg_auto_failover: node0 is up (single)",
            started.elapsed()
        );
        f.programs.query(
            node0,
            "postgres",
            &format!("CREATE ROLE \"{user}\" LOGIN SUPERUSER"),
        );
        f.programs.query(
            node0,
            "postgres",
            &format!("ALTER DATABASE {dbname} OWNER TO \"{user}\""),
        );
        f.create_node(2, dbname);
        eprintln!("[{:?}] pg_auto_failover: node1 cloned", started.elapsed());
        f.spawn_keeper(2);
        f.wait_states(&["primary", "secondary"], Duration::from_secs(60));
        eprintln!(
            "pg_auto_failover: monitor {monitor_port}, primary {node0}, secondary {node1}, up in {:?}",
            started.elapsed()
        );
        f
    }

    pub fn addr(&self, node: usize) -> String {
        format!("127.0.0.1:{}", self.ports[node])
    }

    /// One query's text output on node `node`.
    pub fn query(&self, node: usize, db: &str, sql: &str) -> String {
        self.programs.query(self.ports[node], db, sql)
    }

    /// The monitor's view: each node's (reported state, assigned state), node 0 first.
    pub fn states(&self) -> Vec<(String, String)> {
        let out = self.programs.query(
            self.monitor_port,
            "pg_auto_failover",
            &format!(
                "SELECT reportedstate, goalstate FROM pgautofailover.node \
                 WHERE formationid = '{FORMATION}' ORDER BY nodeid"
            ),
        );
        out.lines()
            .filter_map(|l| l.split_once('|'))
            .map(|(r, g)| (r.to_owned(), g.to_owned()))
            .collect()
    }

    /// `pg_autoctl show state` of the formation, for the test's output.
    pub fn show_state(&self) -> String {
        let out = self.autoctl(&[
            "show",
            "state",
            "--pgdata",
            path(&self.pgdata(0)),
            "--formation",
            FORMATION,
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The machine of node `node` lost: `kill -9` of its keeper's process group (the
    /// keeper, its PostgreSQL and every backend), then waits until its port is closed.
    pub fn kill_node(&self, node: usize) {
        let mut keepers = self.keepers.lock().unwrap();
        let mut child = keepers[node + 1].take().expect("the node's keeper runs");
        run(Command::new("kill").args(["-9", "--", &format!("-{}", child.id())]));
        let _ = child.wait();
        drop(keepers);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.ports[node])).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("the killed node still accepts connections");
    }

    /// The killed node's machine back: its keeper started again, which asks the
    /// monitor what to be (a secondary, rewound with pg_rewind when needed).
    pub fn restart_node(&self, node: usize) {
        let data = self.pgdata(node + 1);
        // A postmaster killed with its parents is nobody's child: gone, or a zombie
        // that PostgreSQL would take for a live one. Its lock file goes, as after a
        // machine's crash.
        if let Ok(text) = std::fs::read_to_string(data.join("postmaster.pid")) {
            let pid = text.lines().next().unwrap_or("").trim().to_owned();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let dead = stat.is_empty() || stat.split(' ').nth(2) == Some("Z");
            assert!(dead, "the killed node's postmaster {pid} still runs");
            let _ = std::fs::remove_file(data.join("postmaster.pid"));
        }
        self.spawn_keeper(node + 1);
    }

    /// Waits until the monitor reports every node's state as `want` (reported and
    /// assigned alike), node 0 first; panics with the formation's state past `within`.
    pub fn wait_states(&self, want: &[&str], within: Duration) {
        let started = Instant::now();
        loop {
            let states = self.states();
            let reached = states.len() == want.len()
                && states.iter().zip(want).all(|((r, g), w)| r == w && g == w);
            if reached {
                return;
            }
            assert!(
                started.elapsed() < within,
                "the formation did not reach {want:?} within {within:?}:\n{}",
                self.show_state()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Data directory of node `node` (0 or 1).
    pub fn node_data(&self, node: usize) -> PathBuf {
        self.pgdata(node + 1)
    }

    /// Data directory of process `i`: 0 the monitor, 1 and 2 the nodes.
    fn pgdata(&self, i: usize) -> PathBuf {
        let name = ["monitor", "node0", "node1"][i];
        self.dir.join("data").join(name)
    }

    pub fn monitor_uri(&self) -> String {
        format!(
            "postgres://autoctl_node@127.0.0.1:{}/pg_auto_failover?sslmode=disable",
            self.monitor_port
        )
    }

    /// `pg_autoctl create postgres` for node `i` (1 or 2); node 1 is initialised as the
    /// primary, node 2 cloned from it. Each keeper then sits stopped until run.
    fn create_node(&self, i: usize, dbname: &str) {
        let data = self.pgdata(i);
        let port = self.ports[i - 1].to_string();
        let name = format!("node{}", i - 1);
        self.autoctl_ok(&[
            "create",
            "postgres",
            "--pgdata",
            path(&data),
            "--pgport",
            &port,
            "--hostname",
            "127.0.0.1",
            "--listen",
            "127.0.0.1",
            "--name",
            &name,
            "--formation",
            FORMATION,
            "--monitor",
            &self.monitor_uri(),
            "--auth",
            "trust",
            "--no-ssl",
            "--dbname",
            dbname,
            "--username",
            "postgres",
            "--pgctl",
            path(&self.programs.bin.join("pg_ctl")),
        ]);
        if i == 1 {
            // pg_auto_failover sizes memory for a machine of its own (GBs of
            // shared_buffers, 8 GB of kept WAL); three servers share this one. The
            // standby is cloned with these.
            let conf = data.join("postgresql.auto.conf");
            let mut text = std::fs::read_to_string(&conf).unwrap_or_default();
            text.push_str(
                "shared_buffers = '128MB'\nwal_keep_size = '256MB'\n\
                 effective_cache_size = '1GB'\nmaintenance_work_mem = '64MB'\nfsync = off\n",
            );
            text.push_str(&self.conf);
            std::fs::write(&conf, text).expect("write postgresql.auto.conf");
        }
        self.autoctl_ok(&[
            "config",
            "set",
            "--pgdata",
            path(&data),
            "timeout.network_partition_timeout",
            NETWORK_PARTITION_S,
        ]);
    }

    /// `pg_autoctl run` for process `i`, in a process group of its own, logging to
    /// `<dir>/<name>.log`.
    fn spawn_keeper(&self, i: usize) {
        use std::os::unix::process::CommandExt;
        let data = self.pgdata(i);
        let name = data.file_name().unwrap().to_string_lossy().into_owned();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.log")))
            .expect("the keeper's log");
        let mut cmd = self.env_command();
        cmd.arg(&self.autoctl)
            .args(["run", "--pgdata", path(&data)])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a log handle"))
            .stderr(log)
            .process_group(0);
        let child = cmd.spawn().expect("start pg_autoctl run");
        self.keepers.lock().unwrap()[i] = Some(child);
    }

    /// pg_autoctl (as `postgres`) with its configuration, state and pid files in the
    /// test's directory, never in the `postgres` user's home.
    fn env_command(&self) -> Command {
        let mut cmd = self.programs.command(Path::new("env"));
        for (var, sub) in [
            ("XDG_CONFIG_HOME", "config"),
            ("XDG_DATA_HOME", "data"),
            ("XDG_RUNTIME_DIR", "run"),
        ] {
            cmd.arg(format!("{var}={}", self.dir.join(sub).display()));
        }
        cmd.arg(format!(
            "PATH={}:/usr/bin:/bin",
            self.programs.bin.display()
        ));
        cmd
    }

    fn autoctl(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = self.env_command();
        cmd.arg(&self.autoctl).args(args);
        cmd.output().expect("run pg_autoctl")
    }

    fn autoctl_ok(&self, args: &[&str]) {
        let out = self.autoctl(args);
        assert!(
            out.status.success(),
            "pg_autoctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Waits until the server on `port` answers a query (accepting connections is not
    /// enough: a starting server refuses them).
    fn wait_accepting(&self, port: u16) {
        for _ in 0..400 {
            let ready = self
                .programs
                .command(&self.programs.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("nothing accepts on {port}");
    }
}

impl Drop for Formation {
    fn drop(&mut self) {
        // Nodes first (SIGTERM: each keeper stops its PostgreSQL), the monitor last.
        let mut keepers = self.keepers.lock().unwrap();
        for i in [2, 1, 0] {
            if let Some(child) = &mut keepers[i] {
                let _ = Command::new("kill")
                    .args(["-TERM", "--", &format!("-{}", child.id())])
                    .status();
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = Command::new("kill")
                    .args(["-9", "--", &format!("-{}", child.id())])
                    .status();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
