//! A pg_auto_failover formation of the test's own: one monitor and two nodes (each a
//! keeper, `pg_autoctl run`, with its PostgreSQL), on free ports, placed on loopback or
//! each node on a host of its own (`placement`), data
//! and pg_autoctl's own files (XDG folders) in a temporary directory owned by
//! `postgres`. Synchronous replication is pg_auto_failover's default with one standby
//! (`ANY 1 (pgautofailover_standby_N)`); the monitor's checks are cut to 1 s and a
//! node unhealthy after 2 s, as `./setup.sh up` cuts them. Nothing shared is
//! touched; every process is stopped and the directory removed when dropped. The
//! processes are run by `keepers`, so [`Formation::kill_node`] is the loss of a whole
//! machine: `kill -9` of its keeper's process group.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::private::keepers::Keepers;
use crate::private::placement::{wait_accepting, wait_closed, Placement};
use crate::private::programs::{free_port, path, Programs};

/// The monitor's timings (milliseconds): checks every second, a node unhealthy after
/// 2 s without a report or a check, and the old primary given 2 s to demote itself
/// (its keeper does after `NETWORK_PARTITION_S` without the monitor and a standby)
/// before the promoted standby takes writes.
const MONITOR_SETTINGS: &[(&str, u32)] = &[
    ("health_check_period", 1000),
    ("health_check_timeout", 1000),
    ("health_check_max_retries", 1),
    ("health_check_retry_delay", 500),
    ("node_considered_unhealthy_timeout", 2000),
    ("startup_grace_period", 2000),
    ("primary_demote_timeout", 2000),
];

/// Seconds a keeper that reaches neither the monitor nor a standby waits before it
/// demotes its own primary.
const NETWORK_PARTITION_S: &str = "1";

/// libpq's bounds on the keeper's link to the monitor (its `--monitor` URI). The keeper
/// runs each monitor query to its end (`connect_timeout` bounds only the connecting), so
/// a link cut while a query is in flight would hold it in that query until TCP gives up
/// (about 15 minutes), with its PostgreSQL writable and unfenced. Worse, a keeper fences
/// itself only after it once saw its standby while the monitor failed
/// (`last_secondary_contact`): held past the WAL sender's `wal_sender_timeout`, it never
/// does. Keepalives bound an idle wait for an answer (1 s, then 2 probes 1 s apart) and
/// `tcp_user_timeout` a request nobody acknowledges (3 s).
const KEEPER_LINK: &str =
    "keepalives=1&keepalives_idle=1&keepalives_interval=1&keepalives_count=2&tcp_user_timeout=3000";

/// pg_autoctl, when installed (Debian's `pg-auto-failover-cli`).
pub fn installed() -> Option<PathBuf> {
    crate::private::programs::installed("pg_autoctl", "/usr/bin")
}

pub struct Formation {
    dir: PathBuf,
    programs: Programs,
    place: Placement,
    pub monitor_port: u16,
    /// The nodes' PostgreSQL ports; node 0 is created first and starts as primary.
    pub ports: [u16; 2],
    /// The monitor's keeper, then node 0's and node 1's.
    keepers: Keepers,
    /// Lines added to node 0's postgresql.auto.conf before its first start (node 1
    /// is cloned with them).
    conf: String,
}

/// The formation's name on the monitor (one formation per shard, as in setup.sh).
const FORMATION: &str = "shard0";

impl Formation {
    /// Starts the monitor, node 0 (the primary, with `user` as a superuser and the
    /// database `dbname`), then node 1, placed as `place` says, and waits until node 1
    /// is a synchronous secondary; `conf` (settings lines, or none) is in node 0's
    /// postgresql.auto.conf from its first start, hence in node 1's too.
    pub fn start_with(
        autoctl: PathBuf,
        user: &str,
        dbname: &str,
        place: Placement,
        conf: &str,
    ) -> Self {
        let dir = crate::private::programs::scratch_dir("autoctl");
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["config", "data", "run"] {
            std::fs::create_dir_all(dir.join(sub)).expect("create the test's directory");
        }
        let programs = Programs::find();
        programs.own(&dir);
        let monitor_port = free_port(place.ports.clone());
        let node0 = free_port(place.ports.clone());
        let node1 = free_port(place.ports.clone());
        let [ns0, ns1] = place.netns.clone();
        let keepers = Keepers::new(dir.clone(), programs.clone(), autoctl, [None, ns0, ns1]);
        let f = Formation {
            dir,
            programs,
            place,
            monitor_port,
            ports: [node0, node1],
            keepers,
            conf: conf.to_owned(),
        };
        let started = Instant::now();
        f.keepers.autoctl_ok(
            0,
            &[
                "create",
                "monitor",
                "--pgdata",
                path(&f.pgdata(0)),
                "--pgport",
                &monitor_port.to_string(),
                "--hostname",
                &f.place.monitor_host,
                "--auth",
                "trust",
                "--no-ssl",
                "--pgctl",
                path(&f.programs.bin.join("pg_ctl")),
            ],
        );
        f.trust_lan(0);
        f.keepers.spawn(0, &f.pgdata(0));
        wait_accepting(&f.programs, "127.0.0.1", monitor_port);
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
        f.keepers.autoctl_ok(
            0,
            &[
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
            ],
        );
        f.create_node(1, dbname);
        f.keepers.spawn(1, &f.pgdata(1));
        f.wait_states(&["single"], Duration::from_secs(30));
        wait_accepting(&f.programs, &f.place.hosts[0], node0);
        if f.place.lan.is_some() {
            // The rules `trust_lan` added, whether or not it started with them.
            f.programs
                .pg_out("pg_ctl", &["reload", "-D", path(&f.pgdata(1))]);
        }
        eprintln!(
            "[{:?}] pg_auto_failover: node0 is up (single)",
            started.elapsed()
        );
        f.query(
            0,
            "postgres",
            &format!("CREATE ROLE \"{user}\" LOGIN SUPERUSER"),
        );
        f.query(
            0,
            "postgres",
            &format!("ALTER DATABASE {dbname} OWNER TO \"{user}\""),
        );
        f.create_node(2, dbname);
        eprintln!("[{:?}] pg_auto_failover: node1 cloned", started.elapsed());
        f.keepers.spawn(2, &f.pgdata(2));
        f.wait_states(&["primary", "secondary"], Duration::from_secs(60));
        eprintln!(
            "pg_auto_failover: monitor {monitor_port}, primary {node0}, secondary {node1}, up in {:?}",
            started.elapsed()
        );
        f
    }

    pub fn addr(&self, node: usize) -> String {
        format!("{}:{}", self.place.hosts[node], self.ports[node])
    }

    /// One query's text output on node `node`.
    pub fn query(&self, node: usize, db: &str, sql: &str) -> String {
        let host = &self.place.hosts[node];
        self.programs.query_at(host, self.ports[node], db, sql)
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
        let out = self.keepers.autoctl(
            0,
            &[
                "show",
                "state",
                "--pgdata",
                path(&self.pgdata(0)),
                "--formation",
                FORMATION,
            ],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether node `node`'s PostgreSQL accepts connections, asked on its own host (so
    /// a node cut off from the network is asked too).
    pub fn accepts_locally(&self, node: usize) -> bool {
        let port = self.ports[node].to_string();
        let netns = self.place.netns[node].as_deref();
        self.programs
            .command_in(netns, &self.programs.bin.join("pg_isready"))
            .args(["-q", "-h", &self.place.hosts[node], "-p", &port])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `pg_autoctl show state --local` of node `node`: what its keeper last knew,
    /// without the monitor.
    pub fn local_state(&self, node: usize) -> String {
        let data = self.pgdata(node + 1);
        let out = self.keepers.autoctl(
            node + 1,
            &["show", "state", "--local", "--pgdata", path(&data)],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The machine of node `node` lost: `kill -9` of its keeper's process group (the
    /// keeper, its PostgreSQL and every backend), then waits until its port is closed.
    pub fn kill_node(&self, node: usize) {
        self.keepers.kill(node + 1);
        wait_closed(&self.place.hosts[node], self.ports[node]);
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
        self.keepers.spawn(node + 1, &data);
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
            "postgres://autoctl_node@{}:{}/pg_auto_failover?sslmode=disable",
            self.place.monitor_host, self.monitor_port
        )
    }

    /// The monitor's URI as each node's keeper uses it: [`Self::monitor_uri`] with
    /// [`KEEPER_LINK`]'s bounds on a link that dies under a query.
    fn keeper_monitor_uri(&self) -> String {
        format!("{}&{KEEPER_LINK}", self.monitor_uri())
    }

    /// The last `lines` lines of node `node`'s keeper log (its own and its
    /// PostgreSQL's), for a failure's message.
    pub fn log_tail(&self, node: usize, lines: usize) -> String {
        self.keepers.log_tail(node + 1, lines)
    }

    /// `pg_autoctl create postgres` for node `i` (1 or 2); node 1 is initialised as the
    /// primary, node 2 cloned from it. Each keeper then sits stopped until run.
    fn create_node(&self, i: usize, dbname: &str) {
        let data = self.pgdata(i);
        let port = self.ports[i - 1].to_string();
        let name = format!("node{}", i - 1);
        let host = &self.place.hosts[i - 1];
        self.keepers.autoctl_ok(
            i,
            &[
                "create",
                "postgres",
                "--pgdata",
                path(&data),
                "--pgport",
                &port,
                "--hostname",
                host,
                "--listen",
                host,
                "--name",
                &name,
                "--formation",
                FORMATION,
                "--monitor",
                &self.keeper_monitor_uri(),
                "--auth",
                "trust",
                "--no-ssl",
                "--dbname",
                dbname,
                "--username",
                "postgres",
                "--pgctl",
                path(&self.programs.bin.join("pg_ctl")),
            ],
        );
        if i == 1 {
            // pg_auto_failover sizes memory for a machine of its own (GBs of
            // shared_buffers, 8 GB of kept WAL); three servers share this one. The
            // standby is cloned with these.
            let conf = data.join("postgresql.auto.conf");
            let mut text = std::fs::read_to_string(&conf).unwrap_or_default();
            text.push_str(
                "shared_buffers = '128MB'\nwal_keep_size = '64MB'\nmax_wal_size = '128MB'\n\
                 effective_cache_size = '1GB'\nmaintenance_work_mem = '64MB'\nfsync = off\n",
            );
            text.push_str(&self.conf);
            std::fs::write(&conf, text).expect("write postgresql.auto.conf");
            // The standby is cloned with these rules.
            self.trust_lan(i);
        }
        self.keepers.autoctl_ok(
            i,
            &[
                "config",
                "set",
                "--pgdata",
                path(&data),
                "timeout.network_partition_timeout",
                NETWORK_PARTITION_S,
            ],
        );
    }

    /// Every login from the placement's network trusted by process `i`'s PostgreSQL
    /// (the test's, the monitor's, the other node's), when it has one; read at the
    /// server's next reload.
    fn trust_lan(&self, i: usize) {
        let Some(lan) = &self.place.lan else { return };
        let hba = self.pgdata(i).join("pg_hba.conf");
        let mut text = std::fs::read_to_string(&hba).expect("read pg_hba.conf");
        text.push_str(&format!(
            "host all all {lan} trust\nhost replication all {lan} trust\n"
        ));
        std::fs::write(&hba, text).expect("write pg_hba.conf");
    }
}

impl Drop for Formation {
    fn drop(&mut self) {
        self.keepers.stop_all();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
