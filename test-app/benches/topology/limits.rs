//! What API keys and fair limits cost the gateway, in CPU per request (not part of a
//! normal run; figures in docs/BENCHMARKS.md):
//!
//! ```text
//! eval "$(./setup.sh env)"
//! cargo bench -p test-app --bench topology -- limits
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
//! them. Run it alone: it takes no lock against the outage tests.

use std::time::Duration;

use control_plane::keys::{store, KeyName, LimitArgs, NewKey, Scopes};
use control_plane::map::meta;
use serde_json::json;
use shard_manager::ClusterSettings;
use test_app::gateway_process::Process;
use test_app::wrk::{mean, Bench, Run};

const ROUNDS: usize = 4;
const KINDS: [&str; 2] = ["errors", "read"];
const ANONYMOUS: &str = "anonymous (no key exists)";
const PLAIN: &str = "key, no limits";
const LIMITED: &str = "key, limits";
const RUN_SECS: u32 = 8;
/// Records read (`users/rec_n` under shard key `user_n`).
const KEYS: usize = 1000;

fn wrk(gateway: &Process, kind: &str, auth: Option<&str>, secs: u32) -> Run {
    let keys = KEYS.to_string();
    let mut env = vec![("KEYS", keys.as_str())];
    if let Some(key) = auth {
        env.push(("AUTH", key));
    }
    test_app::wrk::run(gateway, kind, &env, secs)
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

pub async fn run() {
    let bench = Bench::start().await;
    let (gateway, settings) = (&bench.gateway, &bench.settings);
    let url = |path: &str| bench.url(path);
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
    wrk(gateway, "read", None, 2);

    let errors_url = url("/api/analytics/errors?limit=1");
    let mut runs: Vec<(&str, &str, Run)> = Vec::new();
    for round in 0..ROUNDS {
        // Anonymous first in even rounds, last in odd ones; the keys' order flips too.
        let anonymous = |runs: &mut Vec<(&str, &str, Run)>| {
            for kind in KINDS {
                runs.push((ANONYMOUS, kind, wrk(gateway, kind, None, RUN_SECS)));
            }
        };
        if round % 2 == 0 {
            anonymous(&mut runs);
        }
        let plain = create(settings, "plain", None).await;
        let limited = LimitArgs {
            rate: Some("1000000".into()),
            burst: Some("1000000".into()),
            concurrency: Some("1000".into()),
        };
        let limited = create(settings, "limited", Some(limited)).await;
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
                runs.push((caller, kind, wrk(gateway, kind, Some(key), RUN_SECS)));
            }
        }
        let mut meta = meta::connect(settings).await.unwrap();
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
