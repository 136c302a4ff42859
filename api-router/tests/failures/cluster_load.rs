//! Two gateways as processes under skewed load: the hot slot leads `/api/shards/load`
//! on both within 10 s; the cluster view's request count is the sum of the gateways'
//! own; a gateway that stops answering (SIGSTOP) makes the cluster view partial and
//! named, never an error, and whole again once it runs (SIGCONT).

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{json, Value};
use shard_manager::ShardKey;
use test_app::gateway_process::Process;
use test_app::{prepare_database, test_settings};
use test_support::outage::{serial, DropDatabase};

/// The hot key: nine requests in ten.
const HOT: &str = "tenant-hot";

/// Sends `SIGCONT` on drop, so a failed assertion never leaves a gateway stopped.
struct Stopped(u32);

impl Stopped {
    fn signal(pid: u32, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid}");
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        Stopped::signal(self.0, "-CONT");
    }
}

async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    let res = client.get(url).send().await.expect("get");
    assert_eq!(res.status().as_u16(), 200, "{url}");
    res.json().await.expect("JSON")
}

/// `rounds` rounds of 20 writes, half through each gateway, 18 of them to the hot key.
async fn skewed_writes(client: &reqwest::Client, bases: [&str; 2], rounds: usize) -> usize {
    let mut sent = 0;
    for round in 0..rounds {
        let writes = (0..20).map(|i| {
            let key = if i < 18 {
                HOT.to_owned()
            } else {
                format!("tenant-{round}-{i}")
            };
            let base = bases[i % 2];
            client
                .post(format!("{base}/api/write"))
                .header("x-shard-key", key.as_str())
                .json(&json!({"table": "users", "id": format!("{key}-{round}-{i}"), "data": {"i": i}}))
                .send()
        });
        for res in join_all(writes).await {
            let res = res.expect("write");
            let status = res.status().as_u16();
            if status != 201 && status != 200 {
                let body = res.text().await.unwrap_or_default();
                panic!("write answered {status}: {body}");
            }
            sent += 1;
        }
    }
    sent
}

#[tokio::test]
async fn skewed_load_through_two_gateways_shows_one_hot_slot_and_a_whole_cluster() {
    let _serial = serial().await;
    let mut settings = test_settings();
    prepare_database(&mut settings).await;
    let _db = DropDatabase(settings.cluster.database.dbname.clone());
    let db = settings.cluster.database.dbname.clone();
    let router = settings.cluster.validate().expect("valid settings");
    let hot_slot = router
        .route(ShardKey::parse(HOT).unwrap())
        .unwrap()
        .slot()
        .0;
    let hot_shard = router
        .route(ShardKey::parse(HOT).unwrap())
        .unwrap()
        .shard()
        .0;
    let a = Process::start(&db, &[]).await;
    let b = Process::start(&db, &[]).await;
    let (a_url, b_url) = (
        format!("http://127.0.0.1:{}", a.port),
        format!("http://127.0.0.1:{}", b.port),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // Skewed load; within 10 s of it, the hot slot leads on both gateways.
    let sent = skewed_writes(&client, [&a_url, &b_url], 30).await;
    let loaded = Instant::now();
    for base in [&a_url, &b_url] {
        loop {
            let load = get_json(&client, &format!("{base}/api/shards/load")).await;
            let leads = load["hot_slots"][0]["slot"] == hot_slot
                && load["gateways"].as_array().map(Vec::len) == Some(2);
            if leads {
                assert_eq!(load["hot_slots"][0]["shard"], hot_shard);
                assert_eq!(load["hot_keys"][0]["key"], HOT);
                assert_eq!(load["partial"], false);
                break;
            }
            assert!(
                loaded.elapsed() < Duration::from_secs(10),
                "{base}: the hot slot {hot_slot} does not lead within 10 s: {load:#}\n{}\n{}",
                a.output(),
                b.output()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    eprintln!(
        "the hot slot led on both gateways {:?} after the load",
        loaded.elapsed()
    );

    // Both publish every second: after two, the cluster view equals the sum.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mine = get_json(&client, &format!("{a_url}/api/analytics/metrics")).await;
    let theirs = get_json(&client, &format!("{b_url}/api/analytics/metrics")).await;
    let cluster = get_json(
        &client,
        &format!("{a_url}/api/analytics/metrics?scope=cluster"),
    )
    .await;
    let sum = mine["totals"]["requests"].as_u64().unwrap()
        + theirs["totals"]["requests"].as_u64().unwrap();
    let total = cluster["totals"]["requests"].as_u64().unwrap();
    assert!(sum as usize >= sent, "{sum} < {sent}");
    assert!(
        total.abs_diff(sum) * 100 <= sum,
        "cluster {total}, the gateways' own {sum}"
    );
    assert_eq!(
        cluster["latency"]["by_endpoint"]["/api/write"]["count"].as_u64(),
        Some(sent as u64)
    );

    // B stops answering: A's cluster view is partial and names it, and stays a 200.
    Stopped::signal(b.pid(), "-STOP");
    let stopped = Stopped(b.pid());
    let b_address = format!("127.0.0.1:{}", b.port);
    let since = Instant::now();
    loop {
        let view = get_json(
            &client,
            &format!("{a_url}/api/analytics/metrics?scope=cluster"),
        )
        .await;
        if view["partial"] == true {
            assert_eq!(view["missing_gateways"][0]["address"], b_address.as_str());
            assert_eq!(view["gateways"].as_array().map(Vec::len), Some(1));
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "never partial: {view:#}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(stopped);
    let since = Instant::now();
    loop {
        let view = get_json(
            &client,
            &format!("{a_url}/api/analytics/metrics?scope=cluster"),
        )
        .await;
        if view["partial"] == false && view["gateways"].as_array().map(Vec::len) == Some(2) {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "never whole again: {view:#}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
