//! A shard of its own for the failover tests: a primary and a streaming replica made by
//! `initdb` and `pg_basebackup` in a temporary directory, on free ports in a range
//! ([`Pair::start`]: 26800-26849), trust sign-in on loopback, synchronous replication
//! (`*`) unless the test asks for [`Replication::Async`], prepared transactions allowed.
//! [`Pair::alone`] is a plain primary with no replica (a second shard that does not fail
//! over). Nothing shared is touched. As root, PostgreSQL's programs run as the `postgres`
//! system user, as the cluster's do. Both servers are stopped and removed when dropped.

use std::path::PathBuf;
use std::process::Command;

use crate::private::programs::{free_port, path, run, Programs};

/// When the primary acknowledges a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replication {
    /// Once the replica has it too (`synchronous_standby_names = '*'`): the promoted
    /// replica has every acknowledged write.
    Sync,
    /// Once the primary has it (no `synchronous_standby_names`): the replica follows as
    /// fast as it can, and what it had not received when the primary died is lost.
    Async,
}

pub struct Pair {
    dir: PathBuf,
    programs: Programs,
    pub primary_port: u16,
    pub replica_port: u16,
    /// Where the ports were chosen.
    ports: std::ops::Range<u16>,
}

impl Pair {
    /// Starts the primary, creates `user` (superuser, signs in with trust) and the
    /// database `dbname`, then clones and starts the replica (ports in 26800-26849).
    pub fn start(user: &str, dbname: &str) -> Self {
        Self::alone(user, dbname, "failover", 26800..26850).with_replica()
    }

    /// The primary only, on a free port of `ports`, in a directory named after `tag`:
    /// `replica_port` is 0 until [`Pair::with_replica`].
    pub fn alone(user: &str, dbname: &str, tag: &str, ports: std::ops::Range<u16>) -> Self {
        let dir = crate::private::programs::scratch_dir(tag);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the test's directory");
        let primary_port = free_port(ports.clone());
        let pair = Pair {
            programs: Programs::find(),
            dir,
            primary_port,
            replica_port: 0,
            ports,
        };
        pair.programs.own(&pair.dir);
        let primary = pair.data("primary");
        pair.programs.initdb(&primary);
        std::fs::write(
            primary.join("postgresql.auto.conf"),
            "wal_level = replica\nmax_wal_senders = 10\nhot_standby = on\n\
             wal_log_hints = on\nmax_prepared_transactions = 20\nmax_wal_size = '128MB'\n",
        )
        .expect("write the primary's settings");
        std::fs::write(
            primary.join("pg_hba.conf"),
            "local all all trust\nhost all all 127.0.0.1/32 trust\n\
             host replication all 127.0.0.1/32 trust\n",
        )
        .expect("write pg_hba.conf");
        pair.start_server("primary", primary_port);
        pair.psql(
            primary_port,
            &format!("CREATE ROLE \"{user}\" LOGIN SUPERUSER"),
        );
        pair.psql(
            primary_port,
            &format!("CREATE DATABASE {dbname} OWNER \"{user}\""),
        );
        pair
    }

    /// Clones the primary, starts the clone as its streaming replica, and makes the
    /// primary's commits wait for it (synchronous replication).
    pub fn with_replica(self) -> Self {
        self.with_replica_in(Replication::Sync)
    }

    /// Clones the primary and starts the clone as its streaming replica, in `mode`.
    pub fn with_replica_in(mut self, mode: Replication) -> Self {
        let pair = &mut self;
        pair.replica_port = free_port(pair.ports.clone());
        let (primary_port, replica_port) = (pair.primary_port, pair.replica_port);
        let replica = pair.data("replica");
        pair.pg(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary_port.to_string(),
                "-U",
                "postgres",
                "-D",
                path(&replica),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ],
        );
        pair.start_server("replica", replica_port);
        // Synchronous only from now on (set earlier, the set-up's own commits would wait
        // for a standby that does not exist yet).
        self.set_replication(mode);
        self
    }

    /// Makes the primary's commits wait for the replica (`Sync`) or not (`Async`), from
    /// the next commit on (a reload, no restart).
    pub fn set_replication(&self, mode: Replication) {
        let names = match mode {
            Replication::Sync => "'*'",
            Replication::Async => "''",
        };
        self.psql(
            self.primary_port,
            &format!("ALTER SYSTEM SET synchronous_standby_names = {names}"),
        );
        self.psql(self.primary_port, "SELECT pg_reload_conf()");
    }

    /// The replica stops receiving WAL: its `primary_conninfo` emptied and reloaded, so
    /// its WAL receiver exits and is not started again (it still serves reads and can
    /// be promoted). Returns once no receiver runs, with the position received.
    pub fn stop_replica_receiving(&self) -> String {
        let port = self.replica_port;
        self.psql(port, "ALTER SYSTEM SET primary_conninfo = ''");
        self.psql(port, "SELECT pg_reload_conf()");
        for _ in 0..400 {
            if self.query(
                port,
                "postgres",
                "SELECT count(*) FROM pg_stat_wal_receiver",
            ) == "0"
            {
                return self.query(port, "postgres", "SELECT pg_last_wal_receive_lsn()");
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("the replica's WAL receiver did not stop within 2 s");
    }

    /// The WAL position where the promoted replica's timeline (2) began: the end of
    /// what it had replayed from the old primary, all of which it keeps.
    pub fn switch_point(&self) -> String {
        let history = self.query(
            self.replica_port,
            "postgres",
            "SELECT pg_read_file('pg_wal/00000002.history')",
        );
        let line = history.lines().last().expect("a line in the history file");
        line.split('\t')
            .nth(1)
            .expect("the switch point")
            .to_owned()
    }

    /// The postmaster's process id of `name` (`primary` or `replica`).
    pub fn postmaster_pid(&self, name: &str) -> u32 {
        let pid = std::fs::read_to_string(self.data(name).join("postmaster.pid"))
            .expect("postmaster.pid");
        let pid = pid.lines().next().expect("a pid").trim();
        pid.parse().expect("a process id")
    }

    pub fn primary(&self) -> String {
        format!("127.0.0.1:{}", self.primary_port)
    }

    pub fn replica(&self) -> String {
        format!("127.0.0.1:{}", self.replica_port)
    }

    /// kill -9 of the primary's postmaster: no shutdown, no goodbye to the replica.
    pub fn kill_primary(&self) {
        let pid = self.postmaster_pid("primary").to_string();
        run(Command::new("kill").args(["-9", &pid]));
        // Its backends exit once they find the postmaster gone; the port frees then.
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.primary_port)).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("the killed primary still accepts connections");
    }

    /// What the HA manager does: the replica leaves recovery and takes writes.
    pub fn promote_replica(&self) {
        self.pg(
            "pg_ctl",
            &["promote", "-w", "-D", path(&self.data("replica"))],
        );
    }

    /// The old primary started again as it was: writable (split brain, on purpose).
    pub fn restart_old_primary(&self) {
        let data = self.data("primary");
        // The killed postmaster may linger as a zombie nobody reaps, which PostgreSQL
        // would take for a live one: its lock files go, as after a machine's crash.
        let _ = std::fs::remove_file(data.join("postmaster.pid"));
        let _ = std::fs::remove_file(
            self.dir
                .join(format!(".s.PGSQL.{}.lock", self.primary_port)),
        );
        self.start_server("primary", self.primary_port);
    }

    /// One query's text output on a server (`psql -At`).
    pub fn query(&self, port: u16, db: &str, sql: &str) -> String {
        self.programs.query(port, db, sql)
    }

    fn psql(&self, port: u16, sql: &str) {
        self.query(port, "postgres", sql);
    }

    fn data(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn start_server(&self, name: &str, port: u16) {
        let log = self.dir.join(format!("{name}.log"));
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.try_start_server(name, port)
        }));
        if let Err(e) = started {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            panic!(
                "{name} did not start: {e:?}; its log ends:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }

    fn try_start_server(&self, name: &str, port: u16) {
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            self.dir.display()
        );
        let log = self.dir.join(format!("{name}.log"));
        self.pg(
            "pg_ctl",
            &[
                "start",
                "-w",
                "-D",
                path(&self.data(name)),
                "-l",
                path(&log),
                "-o",
                &options,
            ],
        );
    }

    fn pg(&self, program: &str, args: &[&str]) {
        self.programs.pg_out(program, args);
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for name in ["primary", "replica"] {
            self.programs.stop_at_once(&self.data(name));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
