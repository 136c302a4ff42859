//! One `wrk` run against a gateway process, as `scripts/bench.sh cpu` runs it (for the
//! benchmarks of this binary): the gateway's `utime + stime` from `/proc/PID/stat`
//! around the run, divided by the requests wrk completed.

use std::process::Command;
use std::time::Duration;

use crate::helpers::{prepare_database, test_settings};
use crate::outage::{DropDatabase, DropMetadata};
use crate::process::Process;

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
        let mut settings = test_settings();
        prepare_database(&mut settings).await;
        let dbname = settings.cluster.database.dbname.clone();
        let env = [
            ("SHARDGATE__METADATA__DBNAME", dbname.as_str()),
            ("RUST_LOG", "warn,api_router::startup=info"),
        ];
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

/// One wrk run: gateway CPU µs per request, requests/s, non-2xx answers.
pub struct Run {
    pub us: f64,
    pub rps: f64,
    pub non_2xx: u64,
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name (which may hold spaces): state is field 3, so
    // utime (14) and stime (15) are the 12th and 13th.
    let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    rest[11].parse::<u64>().unwrap() + rest[12].parse::<u64>().unwrap()
}

fn clock_ticks_per_sec() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// `wrk -t1 -c8 -d{secs}s -s scripts/wrk-cpu.lua` with `KIND=kind` and `env`.
pub fn run(gateway: &Process, kind: &str, env: &[(&str, &str)], secs: u32) -> Run {
    std::thread::sleep(Duration::from_secs(1));
    let before = cpu_ticks(gateway.pid());
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", "-c8", &format!("-d{secs}s"), "-s"])
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
    let requests = field("requests in", 0).expect("wrk's request count");
    Run {
        us: ticks as f64 / clock_ticks_per_sec() * 1e6 / requests,
        rps: field("Requests/sec:", 1).unwrap_or(0.0),
        non_2xx: field("Non-2xx or 3xx responses:", 4).unwrap_or(0.0) as u64,
    }
}
