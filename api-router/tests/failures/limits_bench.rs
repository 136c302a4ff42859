//! What API keys and fair limits cost the gateway, in CPU per request (not part of a
//! normal run; figures in docs/BENCHMARKS.md):
//!
//! ```text
//! eval "$(./setup.sh env)"
//! cargo test --release -p api-router --test failures limits_bench -- --ignored --nocapture
//! ```
//!
//! One real gateway (the `api-router` binary, 2 HTTP workers) under
//! `wrk -t1 -c8 -d8s -s scripts/wrk-cpu.lua`, as `scripts/bench.sh cpu` runs it: the
//! gateway's `utime + stime` from `/proc/PID/stat` around each run, divided by the
//! requests wrk completed. Three callers:
//!
//! - anonymous: no key exists (protected mode, a loopback client), nothing to check;
//! - a key without limits (`[limits]` all off): the bearer token hashed and looked up;
//! - a key with limits that never refuse (its own rate 1,000,000/s, burst 1,000,000,
//!   concurrency 1,000): the same, plus the rate check, the `RateLimit` headers and, on
//!   reads, a concurrency permit around the shard work.
//!
//! Two requests: `errors` (`GET /api/analytics/errors?limit=1`, scope `metrics`: the
//! checks and almost nothing else) and `read` (a replica point read). Each of `ROUNDS`
//! rounds runs all three callers (keys made, then revoked; anonymous first or last,
//! the keys' order flipped every other round) to spread the machine's drift over
//! them. Run it alone: it takes no lock against the outage tests of this binary.

use std::process::Command;
use std::time::Duration;

use control_plane::keys::{store, KeyName, LimitArgs, NewKey, Scopes};
use control_plane::map::meta;
use diesel::{Connection, RunQueryDsl};
use serde_json::json;
use shard_manager::servers::connection_url;
use shard_manager::ClusterSettings;

use crate::helpers::{prepare_database, test_settings};
use crate::outage::DropDatabase;
use crate::process::Process;

const ROUNDS: usize = 4;
const KINDS: [&str; 2] = ["errors", "read"];
const ANONYMOUS: &str = "anonymous (no key exists)";
const PLAIN: &str = "key, no limits";
const LIMITED: &str = "key, limits";
const RUN_SECS: u32 = 8;
/// Records read (`users/rec_n` under shard key `user_n`).
const KEYS: usize = 1000;

/// Drops the test's metadata database (the shards' go with [`DropDatabase`]).
struct DropMetadata(ClusterSettings);

impl Drop for DropMetadata {
    fn drop(&mut self) {
        let mut db = self.0.database.clone();
        let name = std::mem::replace(&mut db.dbname, "postgres".into());
        if let Ok(mut conn) =
            diesel::PgConnection::establish(&connection_url(&db, &self.0.metadata.address))
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn);
        }
    }
}

/// One wrk run: gateway CPU µs per request, requests/s, non-2xx answers.
struct Run {
    us: f64,
    rps: f64,
    non_2xx: u64,
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

fn wrk(gateway: &Process, kind: &str, auth: Option<&str>, secs: u32) -> Run {
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
        .env("KEYS", KEYS.to_string());
    if let Some(key) = auth {
        cmd.env("AUTH", key);
    }
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

async fn create(settings: &ClusterSettings, name: &str, limits: Option<LimitArgs>) -> String {
    let key = NewKey {
        name: KeyName::parse(name).unwrap(),
        scopes: Scopes::parse("read,metrics").unwrap(),
        tables: None,
        limits: limits.map_or(Default::default(), |a| a.apply(Default::default()).unwrap()),
    };
    let mut meta = meta::connect(settings).await.unwrap();
    let secret = store::create(&mut meta.client, &key, "bench")
        .await
        .unwrap();
    secret.expose().to_owned()
}

/// Waits until a keyless request gets `status` and, with `key`, 200.
async fn until_status(client: &reqwest::Client, url: &str, keyless: u16, key: Option<&str>) {
    for _ in 0..500 {
        let plain = client.get(url).send().await.unwrap().status().as_u16();
        let with = match key {
            Some(key) => client
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            None => 200,
        };
        if plain == keyless && with == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the gateway never took the key change");
}

/// Whether an answer to `key` carries the `RateLimit` header.
async fn rate_headers(client: &reqwest::Client, url: &str, key: &str) -> bool {
    let res = client.get(url).bearer_auth(key).send().await.unwrap();
    res.headers().get("ratelimit").is_some()
}

fn mean(runs: &[&Run], f: impl Fn(&Run) -> f64) -> f64 {
    runs.iter().map(|r| f(r)).sum::<f64>() / runs.len() as f64
}

#[tokio::test]
#[ignore = "a benchmark: run it alone with --release --ignored --nocapture"]
async fn cpu_per_request_of_keys_and_limits() {
    let mut settings = test_settings();
    prepare_database(&mut settings).await;
    let dbname = settings.cluster.database.dbname.clone();
    let _db = DropDatabase(dbname.clone());
    let _meta = DropMetadata(settings.cluster.clone());
    let env = [
        ("SHARDGATE__METADATA__DBNAME", dbname.as_str()),
        ("RUST_LOG", "warn,api_router::startup=info"),
    ];
    let gateway = Process::start(&dbname, &env).await;
    let url = |path: &str| format!("http://127.0.0.1:{}{path}", gateway.port);
    let client = reqwest::Client::new();
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(500) {
        let records: Vec<_> = chunk
            .iter()
            .map(|n| json!({"shard_key": format!("user_{n}"), "id": format!("rec_{n}"), "data": {"n": n}}))
            .collect();
        let res = client
            .post(url("/api/bulk-write"))
            .json(&json!({"table": "users", "records": records}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    // Replicas replay the records; one warm-up pass.
    wrk(&gateway, "read", None, 2);

    let errors_url = url("/api/analytics/errors?limit=1");
    let mut runs: Vec<(&str, &str, Run)> = Vec::new();
    for round in 0..ROUNDS {
        // Anonymous first in even rounds, last in odd ones; the keys' order flips too.
        let anonymous = |runs: &mut Vec<(&str, &str, Run)>| {
            for kind in KINDS {
                runs.push((ANONYMOUS, kind, wrk(&gateway, kind, None, RUN_SECS)));
            }
        };
        if round % 2 == 0 {
            anonymous(&mut runs);
        }
        let plain = create(&settings.cluster, "plain", None).await;
        let limited = LimitArgs {
            rate: Some("1000000".into()),
            burst: Some("1000000".into()),
            concurrency: Some("1000".into()),
        };
        let limited = create(&settings.cluster, "limited", Some(limited)).await;
        until_status(&client, &errors_url, 401, Some(&plain)).await;
        until_status(&client, &errors_url, 401, Some(&limited)).await;
        assert!(!rate_headers(&client, &errors_url, &plain).await);
        assert!(rate_headers(&client, &errors_url, &limited).await);
        let mut keys = [(PLAIN, &plain), (LIMITED, &limited)];
        if round % 2 == 1 {
            keys.reverse();
        }
        for kind in KINDS {
            for (caller, key) in keys {
                runs.push((caller, kind, wrk(&gateway, kind, Some(key), RUN_SECS)));
            }
        }
        let mut meta = meta::connect(&settings.cluster).await.unwrap();
        for name in ["plain", "limited"] {
            store::revoke(&mut meta.client, &KeyName::parse(name).unwrap(), "bench")
                .await
                .unwrap();
        }
        until_status(&client, &errors_url, 200, None).await;
        if round % 2 == 1 {
            anonymous(&mut runs);
        }
    }

    println!("\n| caller | request | gateway CPU per request | requests/s | non-2xx | runs |");
    println!("|---|---|---|---|---|---|");
    for kind in KINDS {
        for caller in [ANONYMOUS, PLAIN, LIMITED] {
            let these: Vec<&Run> = runs
                .iter()
                .filter(|(c, k, _)| *c == caller && *k == kind)
                .map(|(_, _, r)| r)
                .collect();
            let each: Vec<String> = these.iter().map(|r| format!("{:.1}", r.us)).collect();
            println!(
                "| {caller} | {kind} | {:.1} µs ({}) | {:.0} | {} | {} |",
                mean(&these, |r| r.us),
                each.join(", "),
                mean(&these, |r| r.rps),
                these.iter().map(|r| r.non_2xx).sum::<u64>(),
                these.len()
            );
        }
    }
    for (_, _, run) in &runs {
        assert_eq!(run.non_2xx, 0, "every request answered 2xx");
    }
}
