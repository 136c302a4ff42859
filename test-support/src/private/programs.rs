//! PostgreSQL's programs (and pg_auto_failover's `pg_autoctl`) for the failover tests'
//! private servers: found as `setup.sh` finds them, run as the `postgres` system user
//! when the tests run as root (PostgreSQL refuses root), with the descriptors a
//! cluster lock may hold closed. Shared by `pair` and `autoctl`.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where the programs are and whom they run as.
#[derive(Clone)]
pub struct Programs {
    /// The newest /usr/lib/postgresql/*/bin (initdb, pg_ctl, psql, ...).
    pub bin: PathBuf,
    /// True when we are root: every program runs through `runuser -u postgres`.
    pub as_postgres: bool,
}

impl Programs {
    pub fn find() -> Self {
        Programs {
            bin: pg_bin(),
            as_postgres: std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0),
        }
    }

    /// `dir` (and all in it) handed to `postgres` when we are root.
    pub fn own(&self, dir: &Path) {
        if self.as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir));
        }
    }

    /// The command that runs `program` (a path, or a name on the PATH) as the servers'
    /// user, with inherited descriptors 3-9 closed (a cluster lock held by whoever
    /// started the tests must not be held by a server).
    pub fn command(&self, program: &Path) -> Command {
        self.command_in(None, program)
    }

    /// [`command`](Self::command), run in the network namespace `netns` when one is
    /// given (`ip netns exec`, as root, before the switch to `postgres`).
    pub fn command_in(&self, netns: Option<&str>, program: &Path) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-; exec "$@""#)
            .arg("sh");
        if let Some(netns) = netns {
            cmd.args(["ip", "netns", "exec", netns]);
        }
        if self.as_postgres {
            cmd.args(["runuser", "-u", "postgres", "--"]);
        }
        cmd.arg(program).current_dir("/");
        cmd
    }

    /// Stops the server of data directory `data` at once (`pg_ctl stop -m immediate`)
    /// when it runs. For drop guards: a failure is ignored, never a panic while a
    /// failed test unwinds.
    pub fn stop_at_once(&self, data: &Path) {
        if data.join("postmaster.pid").exists() {
            let _ = self
                .command(&self.bin.join("pg_ctl"))
                .args(["stop", "-m", "immediate", "-D"])
                .arg(data)
                .output();
        }
    }

    /// Runs one of PostgreSQL's programs to its end; panics with its output on failure.
    pub fn pg_out(&self, program: &str, args: &[&str]) -> Output {
        run(self.command(&self.bin.join(program)).args(args))
    }

    /// `initdb` of a new data directory `data`, as every private server has it: the
    /// superuser `postgres` signing in by trust, UTF8 in the C locale, no fsync.
    pub fn initdb(&self, data: &Path) -> Output {
        self.pg_out(
            "initdb",
            &[
                "-D",
                path(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
        )
    }

    /// One query's text output on a server (`psql -At` as `postgres` over TCP).
    pub fn query(&self, port: u16, db: &str, sql: &str) -> String {
        self.query_at("127.0.0.1", port, db, sql)
    }

    /// [`query`](Self::query) on the server at `host`. The SQL goes on standard input,
    /// not the command line: a check listing every acknowledged write can pass the
    /// kernel's 128 KiB limit on one argument (E2BIG).
    pub fn query_at(&self, host: &str, port: u16, db: &str, sql: &str) -> String {
        let port = port.to_string();
        let mut cmd = self.command(&self.bin.join("psql"));
        cmd.args([
            "-X",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            host,
            "-p",
            &port,
            "-U",
            "postgres",
            "-d",
            db,
            "-f",
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("run psql");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("psql's standard input");
            stdin
                .write_all(sql.as_bytes())
                .expect("send the query to psql");
        }
        let out = child.wait_with_output().expect("wait for psql");
        assert!(
            out.status.success(),
            "{cmd:?} ({} bytes of SQL): {}{}",
            sql.len(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

pub fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// Runs `cmd` to its end; panics with its output when it failed.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run a program");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// PostgreSQL's programs, found as `setup.sh` finds them: the newest
/// /usr/lib/postgresql/*/bin, else the folder of `pg_ctl` on the PATH.
fn pg_bin() -> PathBuf {
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path())))
        .filter(|(_, p)| p.join("bin/initdb").exists() && p.join("bin/pg_ctl").exists())
        .max_by_key(|(v, _)| *v);
    if let Some((_, dir)) = newest {
        return dir.join("bin");
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .find(|d| d.join("pg_ctl").exists() && d.join("initdb").exists())
        .expect("PostgreSQL's initdb and pg_ctl (installed by ./setup.sh up)")
}

/// A new directory path for one formation, pair or repository of this test process:
/// `sg-{tag}-{pid}-{n}` in the temporary folder, `n` counting every call. Never a
/// path an earlier one used: a formation dropped late (another clone of it still held
/// when its test released the lock) would otherwise delete, while it stops, the files
/// of the next one made at the same path (seen in CI: the next monitor's PostgreSQL
/// crashed during `pg_autoctl create monitor`).
pub fn scratch_dir(tag: &str) -> std::path::PathBuf {
    static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("sg-{tag}-{}-{n}", std::process::id()))
}

/// The program `name` on the PATH or in `also` (a folder the PATH may leave out, as
/// /usr/sbin for a user's), when installed.
pub fn installed(name: &str, also: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([PathBuf::from(also)])
        .map(|d| d.join(name))
        .find(|p| p.exists())
}

/// A port in `range` for a private server: one nothing listens on here and no
/// PostgreSQL server's socket lock names (a server in another network namespace, or
/// one still starting, does not listen here yet, but its socket lock is shared), and
/// of those the one this process handed out longest ago (never, first). Two tests
/// picking ports at once (a formation picks all of its ports before it starts the
/// first server) so never pick the same one, and the ports of one formation are
/// picked from the whole range, one call each, never from what is left after the
/// last one (which wears out once the range has come round).
pub fn free_port(range: std::ops::Range<u16>) -> u16 {
    // Each port handed out, with the number of its latest hand-out (1, 2, ...).
    static HANDED_OUT: std::sync::Mutex<BTreeMap<u16, u64>> =
        std::sync::Mutex::new(BTreeMap::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    let free = |p: &u16| {
        std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok()
            && SOCKET_DIRS
                .iter()
                .all(|dir| !held(&Path::new(dir).join(format!(".s.PGSQL.{p}.lock"))))
    };
    let port = range
        .clone()
        .filter(free)
        .min_by_key(|p| (handed_out.get(p).copied().unwrap_or(0), *p))
        .unwrap_or_else(|| panic!("no free port in {range:?}"));
    let latest = handed_out.values().max().copied().unwrap_or(0);
    handed_out.insert(port, latest + 1);
    port
}

/// Whether the PostgreSQL socket lock at `lock` is held: it exists and the process
/// its first line names is alive. A server killed with `kill -9` leaves its lock
/// behind, and PostgreSQL itself takes such a stale lock over; so do we, or every
/// port a test ever killed a server on would stay taken for good. A lock we may not
/// read is left to the listening check.
fn held(lock: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(lock) else {
        return false;
    };
    text.lines()
        .next()
        .and_then(|pid| pid.trim().trim_start_matches('-').parse::<u32>().ok())
        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

/// Where PostgreSQL servers keep their Unix sockets and the socket locks that name a
/// port in use: the Debian packages' directory, and PostgreSQL's own default.
const SOCKET_DIRS: [&str; 2] = ["/var/run/postgresql", "/tmp"];

#[cfg(test)]
mod tests {
    use super::{free_port, held};
    use std::net::TcpListener;

    /// Two neighbouring ports nothing listens on, from the system's ephemeral range
    /// (the tests' own servers run in 26600-26999, perhaps at this moment).
    fn two_free() -> std::ops::Range<u16> {
        loop {
            let one = TcpListener::bind(("127.0.0.1", 0)).unwrap();
            let port = one.local_addr().unwrap().port();
            if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
                return port..port + 2;
            }
        }
    }

    #[test]
    fn a_port_handed_out_is_not_handed_out_again_while_another_is_free() {
        let range = two_free();
        let first = free_port(range.clone());
        let second = free_port(range.clone());
        assert_eq!((first, second), (range.start, range.start + 1));
        // Every port of the range handed out: the one handed out longest ago, again,
        // and then the other: the range comes round without ever wearing out.
        assert_eq!(free_port(range.clone()), range.start);
        assert_eq!(free_port(range.clone()), range.start + 1);
        assert_eq!(free_port(range.clone()), range.start);
    }

    #[test]
    fn a_socket_lock_is_held_only_while_the_process_it_names_lives() {
        let dir = std::env::temp_dir().join(format!("sg-lock-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lock = dir.join(".s.PGSQL.1.lock");
        std::fs::write(&lock, format!("{}\n/data\n", std::process::id())).unwrap();
        let live = held(&lock);
        // A process that has exited: its pid is free (until reused, long after).
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let gone_pid = gone.id();
        gone.wait().unwrap();
        std::fs::write(&lock, format!("{gone_pid}\n/data\n")).unwrap();
        let stale = held(&lock);
        let missing = held(&dir.join(".s.PGSQL.2.lock"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((live, stale, missing), (true, false, false));
    }

    #[test]
    fn a_port_something_listens_on_is_skipped() {
        let range = two_free();
        let _held = TcpListener::bind(("127.0.0.1", range.start)).unwrap();
        assert_eq!(free_port(range.clone()), range.start + 1);
    }
}
