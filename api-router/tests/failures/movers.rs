//! Support for the resharding tests: the mover as a child process (this test binary run
//! again, so its fault points can kill it with SIGKILL), a workload of writers and
//! readers through several gateways that logs every acknowledged write, and the checks
//! that every acknowledged write is readable, with its last value, on its owner only.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use control_plane::map::change;
use control_plane::moves::{mover, plan::Which, undo, Move, Phase};
use diesel::sql_types::{BigInt, Text};
use diesel::RunQueryDsl;
use serde_json::{json, Value};
use shard_manager::ClusterSettings;
use test_app::{test_settings, TestApp};

/// How a mover child process ended.
#[derive(Debug)]
pub struct Ended {
    /// Killed by SIGKILL (a fault point), as opposed to exiting.
    pub killed: bool,
    pub success: bool,
    pub output: String,
}

/// Runs `op` (`start:FROM:TO:COUNT`, `startslots:FROM:TO:LIST`, `resume:ID`, `abort:ID`, `reverse:ID`) in a child
/// process against the test's databases; `fault` names the step that kills it.
pub async fn mover_process(dbname: &str, op: &str, fault: Option<&str>) -> Ended {
    child_process(
        "resharding::mover_child",
        &[("SG_MOVER_DB", dbname), ("SG_MOVER_OP", op)],
        "SHARDGATE_FAULT_KILL_MOVER",
        fault,
    )
    .await
}

/// Runs the ignored test `test` of this binary in a child process with `env`;
/// `fault` (if any) arms the kill points of `fault_var` at that step.
pub async fn child_process(
    test: &str,
    env: &[(&str, &str)],
    fault_var: &str,
    fault: Option<&str>,
) -> Ended {
    let exe = std::env::current_exe().expect("test binary");
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        test,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .envs(env.iter().copied())
    .env_remove(fault_var)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if let Some(step) = fault {
        cmd.env(fault_var, step);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run the child"))
        .await
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    Ended {
        killed: out.status.signal() == Some(9),
        success: out.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// What the child does (called from the `mover_child` test when SG_MOVER_OP is set).
pub async fn child(dbname: &str, op: &str) {
    let mut settings = test_settings().cluster;
    settings.database.dbname = dbname.to_owned();
    settings.metadata.dbname = dbname.to_owned();
    let parts: Vec<&str> = op.split(':').collect();
    let mut progress = |_: &Move| {};
    let id = match parts[0] {
        "start" => {
            let request = mover::Request {
                kind: "move-slots".into(),
                from: parts[1].parse().unwrap(),
                to: parts[2].parse().unwrap(),
                which: Which::Count(parts[3].parse().unwrap()),
            };
            mover::start(&settings, &request).await.expect("start").id
        }
        "startslots" => {
            let request = mover::Request {
                kind: "move-slots".into(),
                from: parts[1].parse().unwrap(),
                to: parts[2].parse().unwrap(),
                which: Which::List(parts[3].to_owned()),
            };
            mover::start(&settings, &request).await.expect("start").id
        }
        "reverse" => {
            undo::reverse(&settings, parts[1].parse().unwrap())
                .await
                .expect("reverse")
                .id
        }
        "abort" => {
            let mv = undo::abort(&settings, parts[1].parse().unwrap())
                .await
                .expect("abort");
            println!("MOVE_PHASE={}", mv.phase.as_str());
            return;
        }
        _ => parts[1].parse().unwrap(),
    };
    println!("MOVE_ID={id}");
    let mv = mover::run(&settings, id, &mut progress).await.expect("run");
    println!(
        "MOVE_PHASE={} FENCE_MS={:?}",
        mv.phase.as_str(),
        mv.fence_ms
    );
}

/// The move id a child printed.
pub fn move_id(output: &str) -> i64 {
    let at = output
        .find("MOVE_ID=")
        .unwrap_or_else(|| panic!("no move id in: {output}"));
    let digits: String = output[at + 8..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

/// The move as the metadata database has it.
pub async fn status(settings: &ClusterSettings, id: i64) -> Move {
    let conn = control_plane::map::meta::connect(settings).await.unwrap();
    control_plane::moves::Moves::new(&conn.client)
        .get(id)
        .await
        .unwrap()
}

/// What the workload saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// (shard key, id) → the last value acknowledged.
    pub acked: HashMap<String, i64>,
    /// Shard key → the read-your-writes token of its last acknowledged write.
    pub tokens: HashMap<String, String>,
    pub writes: u64,
    pub reads: u64,
    /// Every request that did not succeed: what and why.
    pub failed: Vec<String>,
    /// Reads that returned a value older than one acknowledged before they were sent.
    pub stale: Vec<String>,
}

/// Writers, each with keys of its own, writing through the gateways in turn and reading
/// back what they wrote through the next gateway with the write's token; stopped by [`Workload::stop`].
pub struct Workload {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Seen>>,
}

impl Workload {
    pub fn start(gateways: &[String], writers: usize, keys_each: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap();
        let tasks = (0..writers)
            .map(|w| {
                let (stop, client, gateways) = (stop.clone(), client.clone(), gateways.to_vec());
                tokio::spawn(async move {
                    let mut seen = Seen::default();
                    let mut n = 0i64;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let key = format!("w{w}-k{}", n as usize % keys_each);
                        let base = &gateways[n as usize % gateways.len()];
                        write_one(&client, base, &key, n, &mut seen).await;
                        let base = &gateways[(n as usize + 1) % gateways.len()];
                        read_one(&client, base, &key, &mut seen).await;
                    }
                    seen
                })
            })
            .collect();
        Self { stop, tasks }
    }

    pub async fn stop(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Seen::default();
        for task in self.tasks {
            let seen = task.await.unwrap();
            all.acked.extend(seen.acked);
            all.writes += seen.writes;
            all.reads += seen.reads;
            all.failed.extend(seen.failed);
            all.stale.extend(seen.stale);
        }
        all
    }
}

async fn write_one(client: &reqwest::Client, base: &str, key: &str, n: i64, seen: &mut Seen) {
    seen.writes += 1;
    let body = json!({"table": "users", "id": "r", "data": {"n": n}});
    match client
        .post(format!("{base}/api/write"))
        .header("x-shard-key", key)
        .json(&body)
        .send()
        .await
    {
        Ok(res) if res.status().is_success() => {
            seen.acked.insert(key.to_owned(), n);
            if let Some(token) = res
                .headers()
                .get("x-shard-lsn")
                .and_then(|t| t.to_str().ok())
            {
                seen.tokens.insert(key.to_owned(), token.to_owned());
            }
        }
        Ok(res) => {
            let status = res.status();
            let text = res.text().await.unwrap_or_default();
            seen.failed
                .push(format!("write {key}={n}: {status} {text}"));
        }
        Err(e) => seen.failed.push(format!("write {key}={n}: {e}")),
    }
}

async fn read_one(client: &reqwest::Client, base: &str, key: &str, seen: &mut Seen) {
    let Some(&want) = seen.acked.get(key) else {
        return;
    };
    seen.reads += 1;
    // Through the other gateway, with the write's token: read-your-writes must hold
    // even when the two gateways route the key with different map versions.
    let token = seen.tokens.get(key).cloned().unwrap_or_default();
    let res = client
        .get(format!("{base}/api/read?table=users&id=r"))
        .header("x-shard-key", key)
        .header("x-min-lsn", token)
        .send()
        .await;
    match res {
        Ok(res) if res.status().is_success() => {
            let body: Value = res.json().await.unwrap_or_default();
            let got = body["record"]["data"]["n"].as_i64().unwrap_or(-1);
            if got < want {
                seen.stale
                    .push(format!("read {key}: {got} after {want} was acknowledged"));
            }
        }
        Ok(res) => {
            let status = res.status();
            let text = res.text().await.unwrap_or_default();
            seen.failed.push(format!("read {key}: {status} {text}"));
        }
        Err(e) => seen.failed.push(format!("read {key}: {e}")),
    }
}

#[derive(diesel::QueryableByName)]
struct Stored {
    #[diesel(sql_type = Text)]
    shard_key: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The workload ran (over 100 writes), no request failed and no read was stale; then
/// [`check_placement`].
pub async fn check_clean_run(app: &TestApp, seen: &Seen) {
    assert!(
        seen.failed.is_empty(),
        "{} failed requests: {:?}",
        seen.failed.len(),
        &seen.failed[..seen.failed.len().min(5)]
    );
    assert!(seen.stale.is_empty(), "stale reads: {:?}", seen.stale);
    assert!(
        seen.writes > 100,
        "the workload ran: {} writes",
        seen.writes
    );
    check_placement(app, &seen.acked).await;
}

/// Every acknowledged write is on exactly one shard, its owner in the stored map, with
/// its last acknowledged value (or a later one, from a write whose answer was lost);
/// and readable through the gateway with that value.
pub async fn check_placement(app: &TestApp, acked: &HashMap<String, i64>) {
    let map = change::current(&app.settings.cluster).await.expect("map");
    let router = map.router().unwrap();
    let mut found: HashMap<String, Vec<(usize, i64)>> = HashMap::new();
    for shard in 0..map.shards.len() {
        // The map's servers: a shard added since the test started is not in its settings.
        let mut conn = app.connect(&map.shards[shard].primary);
        let rows: Vec<Stored> = diesel::sql_query(
            "SELECT shard_key, (data->>'n')::bigint AS n FROM records WHERE table_name = 'users' AND id = 'r'",
        )
        .load(&mut conn)
        .unwrap();
        for r in rows {
            found.entry(r.shard_key).or_default().push((shard, r.n));
        }
    }
    for (key, want) in acked {
        let places = found.get(key).cloned().unwrap_or_default();
        let owner = router
            .route(shard_manager::ShardKey::parse(key).unwrap())
            .unwrap()
            .shard()
            .index();
        assert_eq!(
            places.len(),
            1,
            "{key} is stored on shards {places:?}, not once"
        );
        assert_eq!(
            places[0].0, owner,
            "{key} is on shard {} but its owner is {owner}",
            places[0].0
        );
        assert!(
            places[0].1 >= *want,
            "{key} holds {} but {want} was acknowledged",
            places[0].1
        );
        let res = app.read_strong(key, "users", "r").await;
        assert_eq!(res.status().as_u16(), 200, "read {key}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body["record"]["data"]["n"].as_i64(),
            Some(places[0].1),
            "{key} read back"
        );
    }
}

/// The move is done and the map gives its slots to the target.
pub async fn assert_done(settings: &ClusterSettings, id: i64) -> Move {
    let mv = status(settings, id).await;
    assert_eq!(mv.phase, Phase::Done, "{mv:?}");
    let map = change::current(settings).await.unwrap();
    for slot in &mv.detail.slots {
        assert_eq!(map.owners[*slot as usize], mv.detail.target, "slot {slot}");
    }
    mv
}
