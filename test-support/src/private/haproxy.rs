//! HAProxy of the test's own (Debian's `haproxy`) in front of a private formation's two
//! nodes, as a team puts one before Patroni or pg_auto_failover: a fixed address that
//! leads to the primary (`rw`) and one spread over the standbys (`ro`).
//!
//! HAProxy learns each node's role by signing in: its `tcp-check` sends a startup
//! message as [`CHECK_USER`] (a role with no privileges, trusted from loopback) and reads
//! the parameters PostgreSQL 14+ reports before ReadyForQuery, exactly what libpq's
//! `target_session_attrs` reads. `rw` takes a node only with `in_hot_standby` and
//! `default_transaction_read_only` both off (`balance first`); `ro` one with
//! `in_hot_standby` on (`roundrobin`), and every node again as a backup that only has to
//! finish its startup (the `any` backend's check, tracked), so reads go on while the
//! promoted node is the only one left. A node marked down has its sessions cut
//! (`on-marked-down shutdown-sessions`). A refusal (`E`) fails the check at once; the
//! check ends with Terminate, so the servers log nothing.
//!
//! The test reads the servers' states from HAProxy's stats socket ([`Haproxy::states`]).
//! HAProxy runs as the servers' user in a process group of its own, its configuration
//! and output (`haproxy.log`: every server going up or down) in a temporary directory;
//! stopped and removed when dropped.

use std::io::{Read, Write};
use std::ops::Range;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::private::programs::{free_port, path, scratch_dir, Programs};

/// The role HAProxy's checks sign in as: it must exist on the nodes, with LOGIN only.
pub const CHECK_USER: &str = "shardgate_check";

/// The database the checks sign in to.
const CHECK_DB: &str = "postgres";

/// HAProxy, when installed (Debian's `haproxy`, which `./setup.sh up` installs).
pub fn installed() -> Option<PathBuf> {
    crate::private::programs::installed("haproxy", "/usr/sbin")
}

/// One server line of HAProxy's `show stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    /// `rw`, `ro` or `any`.
    pub backend: String,
    /// `node0`, `node1`, or in `ro` the backups `node0_any`, `node1_any`.
    pub server: String,
    /// `UP`, `DOWN`, or a transition (`UP 1/2`, `DOWN 1/1`), `MAINT`.
    pub status: String,
    /// The last check's result and description (`L7OK`, `L7RSP: TCPCHK did not match
    /// content ... at step 5`): what to print when a state is not the one expected.
    pub last_check: String,
}

pub struct Haproxy {
    dir: PathBuf,
    programs: Programs,
    /// The address leading to the primary.
    pub rw_port: u16,
    /// The address spread over the standbys.
    pub ro_port: u16,
    child: Mutex<Option<Child>>,
}

impl Haproxy {
    /// Starts `haproxy` in front of `nodes` (`host:port`, node 0 first), its two ports
    /// picked in `ports`, and waits until its stats socket answers.
    pub fn start(haproxy: &Path, nodes: [String; 2], ports: Range<u16>) -> Self {
        use std::os::unix::process::CommandExt;
        let dir = scratch_dir("haproxy");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create HAProxy's directory");
        let rw_port = free_port(ports.clone());
        let ro_port = free_port(ports.clone());
        let cfg = dir.join("haproxy.cfg");
        let text = config(&dir.join("stats.sock"), rw_port, ro_port, &nodes);
        std::fs::write(&cfg, text).expect("write haproxy.cfg");
        let programs = Programs::find();
        programs.own(&dir);
        let log = std::fs::File::create(dir.join("haproxy.log")).expect("HAProxy's log");
        let child = programs
            .command(haproxy)
            .args(["-db", "-f", path(&cfg)])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a log handle"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start haproxy");
        let proxy = Haproxy {
            dir,
            programs,
            rw_port,
            ro_port,
            child: Mutex::new(Some(child)),
        };
        let started = Instant::now();
        while proxy.try_states().is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "HAProxy did not start within 10 s: {}",
                proxy.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        proxy
    }

    /// `host:port` of the address leading to the primary.
    pub fn rw(&self) -> String {
        format!("127.0.0.1:{}", self.rw_port)
    }

    /// `host:port` of the address spread over the standbys.
    pub fn ro(&self) -> String {
        format!("127.0.0.1:{}", self.ro_port)
    }

    /// One query's text output through port `port` (`rw_port` or `ro_port`), on a new
    /// connection as `postgres`.
    pub fn query(&self, port: u16, db: &str, sql: &str) -> String {
        self.programs.query(port, db, sql)
    }

    /// Every server's state, as the stats socket reports it now.
    pub fn states(&self) -> Vec<ServerState> {
        self.try_states()
            .unwrap_or_else(|| panic!("HAProxy's stats socket answers: {}", self.log()))
    }

    /// The status of `server` in `backend` (`UP`, `DOWN`, ...).
    pub fn status(&self, backend: &str, server: &str) -> String {
        self.states()
            .into_iter()
            .find(|s| s.backend == backend && s.server == server)
            .unwrap_or_else(|| panic!("no server {backend}/{server} in HAProxy's stats"))
            .status
    }

    /// Waits until every `(backend, server, status)` of `want` holds at once; how long
    /// that took. Panics with every server's state and HAProxy's output past `within`.
    pub fn wait_states(&self, want: &[(&str, &str, &str)], within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let states = self.states();
            let holds = want.iter().all(|(b, s, st)| {
                states
                    .iter()
                    .any(|x| x.backend == *b && x.server == *s && x.status == *st)
            });
            if holds {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "HAProxy's servers did not reach {want:?} within {within:?}:\n{}\n{}",
                show(&states),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// HAProxy's output so far (servers going up and down, alerts).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("haproxy.log")).unwrap_or_default()
    }

    /// `show stat` on the stats socket, the server lines parsed; None while it does not
    /// answer.
    fn try_states(&self) -> Option<Vec<ServerState>> {
        let mut sock = UnixStream::connect(self.dir.join("stats.sock")).ok()?;
        sock.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        sock.write_all(b"show stat\n").ok()?;
        let mut csv = String::new();
        sock.read_to_string(&mut csv).ok()?;
        parse_stat(&csv)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let child = self.child.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut child) = child {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-9", "--", &group]).status();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every server's state, one a line, for a failure's message.
pub fn show(states: &[ServerState]) -> String {
    states
        .iter()
        .map(|s| {
            format!(
                "{}/{}: {} ({})",
                s.backend, s.server, s.status, s.last_check
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The server lines of `show stat`'s CSV (its first line names the columns).
fn parse_stat(csv: &str) -> Option<Vec<ServerState>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (px, sv, status) = (col("pxname")?, col("svname")?, col("status")?);
    let (check, desc) = (col("check_status")?, col("check_desc")?);
    let states = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.len() > desc && !matches!(f[sv], "FRONTEND" | "BACKEND"))
        .map(|f| ServerState {
            backend: f[px].to_owned(),
            server: f[sv].to_owned(),
            status: f[status].to_owned(),
            last_check: format!("{}: {}", f[check], f[desc]),
        })
        .collect();
    Some(states)
}

/// HAProxy's configuration: `rw` and `ro` on loopback, the checks of the module's doc.
fn config(socket: &Path, rw_port: u16, ro_port: u16, nodes: &[String; 2]) -> String {
    let servers: String = (0..2)
        .map(|i| format!("    server node{i} {} check\n", nodes[i]))
        .collect();
    let backups: String = (0..2)
        .map(|i| {
            format!(
                "    server node{i}_any {} backup track any/node{i}\n",
                nodes[i]
            )
        })
        .collect();
    let primary = [
        expect_parameter("in_hot_standby", "off"),
        expect_parameter("default_transaction_read_only", "off"),
    ];
    let standby = [expect_parameter("in_hot_standby", "on")];
    format!(
        "global\n    stats socket {socket} mode 600 level admin\n    stats timeout 10s\n\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1h\n    \
         timeout server 1h\n    timeout check 1s\n    \
         default-server inter 300ms fastinter 100ms rise 1 fall 2 on-marked-down shutdown-sessions\n\n\
         listen rw\n    bind 127.0.0.1:{rw_port}\n    balance first\n{rw_checks}{rw_servers}\n\
         listen ro\n    bind 127.0.0.1:{ro_port}\n    balance roundrobin\n{ro_checks}{ro_servers}{backups}\n\
         backend any\n{any_checks}{any_servers}",
        socket = path(socket),
        rw_checks = checks(&primary),
        rw_servers = servers,
        ro_checks = checks(&standby),
        ro_servers = servers,
        any_checks = checks(&[]),
        any_servers = servers,
    )
}

/// A backend's `tcp-check` rules: sign in as [`CHECK_USER`], fail at once on an
/// ErrorResponse, wait for ReadyForQuery (every ParameterStatus came before it), then
/// match each of `parameters` (`tcp-check expect` lines), and say goodbye.
fn checks(parameters: &[String]) -> String {
    let mut rules = vec![
        "option tcp-check".to_owned(),
        "tcp-check connect".to_owned(),
        format!(
            "tcp-check send-binary {}",
            hex(&startup_message(CHECK_USER, CHECK_DB))
        ),
        "tcp-check expect !rstring ^E min-recv 5".to_owned(),
        // 'Z', length 5, 'I' (idle).
        format!("tcp-check expect rbinary {}", hex(b"Z\0\0\0\x05I")),
    ];
    rules.extend(parameters.iter().cloned());
    // 'X', length 4: Terminate.
    rules.push(format!("tcp-check send-binary {}", hex(b"X\0\0\0\x04")));
    rules.iter().map(|r| format!("    {r}\n")).collect()
}

/// The rule that matches the ParameterStatus `name` = `value` anywhere in the answer
/// (the regex runs over the answer's hex dump: a string match would stop at its NULs).
/// It runs after ReadyForQuery was read, so the whole startup answer is in: `min-recv`
/// makes a mismatch fail at once, where HAProxy would otherwise wait for more data
/// until `timeout check` (the server sends nothing more before a query).
fn expect_parameter(name: &str, value: &str) -> String {
    let text = format!("{name}\0{value}\0");
    format!(
        "tcp-check expect rbinary {} min-recv 6",
        hex(text.as_bytes())
    )
}

/// PostgreSQL's StartupMessage (protocol 3.0) for `user` on `database`.
fn startup_message(user: &str, database: &str) -> Vec<u8> {
    let mut body = 196608u32.to_be_bytes().to_vec();
    for (key, value) in [("user", user), ("database", database)] {
        for s in [key, value] {
            body.extend_from_slice(s.as_bytes());
            body.push(0);
        }
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend(body);
    msg
}

/// `bytes` in upper-case hex, as HAProxy dumps an answer for `rbinary`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_startup_message_is_postgresqls() {
        // Length 48, protocol 3.0, user, database, the closing NUL.
        let msg = startup_message("shardgate_check", "postgres");
        assert_eq!(msg.len(), 48);
        assert_eq!(
            hex(&msg),
            "0000003000030000757365720073686172646761746\
             55F636865636B00646174616261736500706F7374677265730000"
        );
    }

    #[test]
    fn a_parameter_rule_matches_its_name_and_value_with_their_nuls() {
        assert_eq!(
            expect_parameter("in_hot_standby", "off"),
            "tcp-check expect rbinary 696E5F686F745F7374616E646279006F666600 min-recv 6"
        );
    }

    #[test]
    fn show_stat_is_read_by_its_header() {
        let csv = "# pxname,svname,status,check_status,check_desc,x\n\
                   rw,FRONTEND,OPEN,,,\n\
                   rw,node0,UP,L7OK,Layer7 check passed,\n\
                   rw,node1,DOWN,L7RSP,Layer7 invalid response,\n\
                   rw,BACKEND,UP,,,\n";
        let states = parse_stat(csv).unwrap();
        assert_eq!(states.len(), 2);
        assert_eq!(states[1].server, "node1");
        assert_eq!(states[1].status, "DOWN");
        assert_eq!(states[1].last_check, "L7RSP: Layer7 invalid response");
    }
}
