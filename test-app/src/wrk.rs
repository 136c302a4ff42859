//! One `wrk` run against a gateway process, as `scripts/bench.sh cpu` runs it (for
//! api-router's topology benchmarks and the snapshot benchmark): the gateway's `utime +
//! stime` from `/proc/PID/stat` around the run, divided by the requests wrk completed;
//! the same for named servers of the local topology (a PostgreSQL server's postmaster,
//! its live children and those it reaped), and wrk's latency percentiles.

use std::process::Command;
use std::time::Duration;

use crate::app::{prepare_database, test_settings};
use crate::gateway_process::Process;
use test_support::outage::{DropDatabase, DropMetadata};
use test_support::repo::repo_root;

/// A benchmark's gateway: the `api-router` binary on a fresh test database, dropped
/// (with its metadata database) when this is.
pub struct Bench {
    pub gateway: Process,
    pub settings: shard_manager::ClusterSettings,
    _db: DropDatabase,
    _meta: DropMetadata,
}

impl Bench {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// [`Bench::start`] with `extra` on top of the gateway's environment (a later
    /// value of a name wins).
    pub async fn start_with(extra: &[(&str, &str)]) -> Self {
        let mut settings = test_settings();
        prepare_database(&mut settings).await;
        let dbname = settings.cluster.database.dbname.clone();
        let mut env = vec![
            ("SHARDGATE__METADATA__DBNAME", dbname.as_str()),
            ("RUST_LOG", "warn,api_router::startup=info"),
        ];
        env.extend_from_slice(extra);
        let gateway = Process::start(&dbname, &env).await;
        Self {
            gateway,
            _db: DropDatabase(dbname),
            _meta: DropMetadata(settings.cluster.clone()),
            settings: settings.cluster,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.gateway.port)
    }
}

/// The mean of `f` over `runs`.
pub fn mean(runs: &[&Run], f: impl Fn(&Run) -> f64) -> f64 {
    runs.iter().map(|r| f(r)).sum::<f64>() / runs.len() as f64
}

/// One wrk run: gateway CPU µs per request, requests/s, non-2xx answers, latency p50
/// and p99 (ms), and the CPU µs per request of each watched server group.
pub struct Run {
    pub us: f64,
    pub rps: f64,
    pub non_2xx: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub servers_us: Vec<f64>,
}

/// A process's `/proc/PID/stat` fields after the command name (which may hold spaces):
/// state is field 3, so ppid (4) is the 2nd, utime (14) and stime (15) the 12th and
/// 13th, cutime and cstime (16, 17) the 14th and 15th. None once the process is gone.
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(
        rest.split(' ')
            .map(|f| f.parse::<u64>().unwrap_or(0))
            .collect(),
    )
}

fn cpu_ticks(pid: u32) -> u64 {
    let f = stat_fields(pid).expect("/proc/PID/stat");
    f[11] + f[12]
}

/// CPU ticks of the local topology's PostgreSQL server `name` (its data directory under
/// `.local/cluster`): the postmaster with the children it reaped, and its live children.
fn server_ticks(name: &str) -> u64 {
    let pidfile = repo_root().join(format!(".local/cluster/{name}/postmaster.pid"));
    let text = std::fs::read_to_string(&pidfile).expect("the server's postmaster.pid");
    let postmaster: u32 = text.lines().next().unwrap().trim().parse().unwrap();
    let own = stat_fields(postmaster).expect("the postmaster runs");
    let mut ticks = own[11] + own[12] + own[13] + own[14];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(f) = stat_fields(pid).filter(|f| f[1] == u64::from(postmaster)) {
            ticks += f[11] + f[12];
        }
    }
    ticks
}

/// A wrk latency figure ("812.00us", "1.23ms", "2.01s") in milliseconds.
fn millis(text: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (text, 1.0)
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

fn clock_ticks_per_sec() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// `wrk -t1 -c8 -d{secs}s -s scripts/wrk-cpu.lua` with `KIND=kind` and `env`.
pub fn run(gateway: &Process, kind: &str, env: &[(&str, &str)], secs: u32) -> Run {
    run_watching(gateway, kind, env, secs, &[])
}

/// [`run`], also measuring the CPU of each group of servers in `watch` (each a list of
/// data directory names under `.local/cluster`, e.g. `["meta"]`).
pub fn run_watching(
    gateway: &Process,
    kind: &str,
    env: &[(&str, &str)],
    secs: u32,
    watch: &[&[&str]],
) -> Run {
    std::thread::sleep(Duration::from_secs(1));
    let group_ticks = || -> Vec<u64> {
        watch
            .iter()
            .map(|names| names.iter().map(|n| server_ticks(n)).sum())
            .collect()
    };
    let servers_before = group_ticks();
    let before = cpu_ticks(gateway.pid());
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", "-c8", "--latency", &format!("-d{secs}s"), "-s"])
        // This checkout's script (SHARDGATE_REPO may name another for the config).
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scripts/wrk-cpu.lua"
        ))
        .arg(format!("http://127.0.0.1:{}", gateway.port))
        .env("KIND", kind)
        .envs(env.iter().copied());
    let out = cmd.output().expect("run wrk (apt-get install wrk)");
    let ticks = cpu_ticks(gateway.pid()) - before;
    let servers_after = group_ticks();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "wrk: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |pattern: &str, at: usize| -> Option<f64> {
        text.lines()
            .find(|l| l.contains(pattern))
            .and_then(|l| l.split_whitespace().nth(at))
            .and_then(|v| v.parse().ok())
    };
    let percentile = |label: &str| -> f64 {
        text.lines()
            .map(str::split_whitespace)
            .find_map(|mut words| match (words.next(), words.next()) {
                (Some(l), Some(v)) if l == label => millis(v),
                _ => None,
            })
            .unwrap_or(0.0)
    };
    let requests = field("requests in", 0).expect("wrk's request count");
    let per_request = |ticks: u64| ticks as f64 / clock_ticks_per_sec() * 1e6 / requests;
    Run {
        us: per_request(ticks),
        rps: field("Requests/sec:", 1).unwrap_or(0.0),
        non_2xx: field("Non-2xx or 3xx responses:", 4).unwrap_or(0.0) as u64,
        p50_ms: percentile("50%"),
        p99_ms: percentile("99%"),
        servers_us: servers_after
            .iter()
            .zip(&servers_before)
            .map(|(a, b)| per_request(a - b))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::millis;

    #[test]
    fn wrk_latencies_read_in_milliseconds() {
        assert_eq!(millis("812.00us"), Some(0.812));
        assert_eq!(millis("1.50ms"), Some(1.5));
        assert_eq!(millis("2.00s"), Some(2000.0));
        assert_eq!(millis("n/a"), None);
    }
}
