//! Failovers are visible: a failover of shard 1 recorded in the test's own metadata
//! database (as the failover watcher records one: `failover::record::promote`), then a
//! switchover back (`record::store`, as `shard-admin switchover` records one), show in
//! `/api/health`, `/api/shards` (what the dashboard draws its event lines from) and
//! `/metrics` with their exact values, on the gateway that saw them happen and on one
//! started afterwards.
//!
//! The gateway's own failover watcher is off: the map names the real replica as
//! shard 1's primary between the two records, and the watcher would fence the real
//! primary (in this test's database only, but the test is about what is shown).

use std::time::{Duration, Instant};

use control_plane::failover::record;
use prometheus_parse::Scrape;
use serde_json::{json, Value};
use shard_manager::live_map::PromotionKind;
use shard_manager::ShardId;
use test_app::{spawn_app_with, TestApp};

/// Polls `path` on `base` until `done` holds; panics after 15 s (a gateway follows the
/// map within a second; a loaded machine, where one metadata round trip can pass its
/// 2 s bound and be retried, is slower).
async fn until(app: &TestApp, base: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        // A connection the gateway closed as the client reused it is asked again.
        let body = match app.client.get(format!("{base}{path}")).send().await {
            Ok(res) => res.json::<Value>().await.unwrap_or(Value::Null),
            Err(e) => json!({ "transport": e.to_string() }),
        };
        if done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{base}{path} never showed it: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// When map version `version` was recorded, as the gateway shows it (UTC, ms).
async fn recorded_at(app: &TestApp, version: i64) -> String {
    let meta = control_plane::map::meta::connect(&app.settings.cluster)
        .await
        .expect("metadata connection");
    meta.client
        .query_one(
            "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')
               FROM map_history WHERE version = $1",
            &[&version],
        )
        .await
        .expect("the history line")
        .get(0)
}

/// The exposition's lines, checked to parse as Prometheus text.
async fn metrics(app: &TestApp, base: &str) -> Vec<String> {
    let text = app
        .client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("valid Prometheus text");
    text.lines().map(str::to_owned).collect()
}

fn assert_lines(lines: &[String], wanted: &[String]) {
    for w in wanted {
        assert!(
            lines.iter().any(|l| l == w),
            "{w} not in /metrics:\n{}",
            lines
                .iter()
                .filter(|l| l.starts_with("shardgate_shard")
                    || l.starts_with("shardgate_failovers")
                    || l.starts_with("shardgate_map")
                    || l.starts_with("shardgate_gateways"))
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[tokio::test]
async fn a_failover_and_a_switchover_show_in_health_shards_and_metrics_on_every_gateway() {
    let app = spawn_app_with(|s| s.cluster.failover.watch = false).await;
    let (primary, replica) = (app.primary(1), app.replica(1));
    let base = app.address.clone();

    // Before: every shard at term 1, no event, map v1, this gateway live.
    let health = until(&app, &base, "/api/health", |h| h["map"]["version"] == 1).await;
    assert_eq!(health["failovers"], json!([]));
    for s in health["shards"].as_array().unwrap() {
        assert_eq!(
            (s["term"].clone(), s["last_failover"].clone()),
            (json!(1), Value::Null)
        );
    }
    until(&app, &base, "/api/shards", |s| {
        s["gateways"].as_array().unwrap().len() == 1
    })
    .await;
    assert_lines(
        &metrics(&app, &base).await,
        &[
            "shardgate_map_version 1".into(),
            "shardgate_gateways_live 1".into(),
            "shardgate_shard_term{shard=\"1\"} 1".into(),
            "shardgate_failovers_total{shard=\"1\",kind=\"failover\"} 0".into(),
        ],
    );

    // A failover of shard 1, seen 4234 ms after its primary first failed a check.
    let map = record::promote(&app.settings.cluster, ShardId(1), &primary, &replica, 4234)
        .await
        .expect("record the failover")
        .expect("the map still named the primary");
    assert_eq!((map.version.0, map.shards[1].term), (2, 2));
    let at = recorded_at(&app, 2).await;
    let failover = json!({
        "shard": 1, "kind": "failover", "from": primary, "to": replica, "term": 2,
        "map_version": 2, "at": at, "took_ms": 4234,
        "line": format!("shard-1 failed over to {replica} in 4.2 s, term 2"),
    });

    let health = until(&app, &base, "/api/health", |h| {
        h["map"]["version"] == 2 && h["failovers"].as_array().is_some_and(|f| !f.is_empty())
    })
    .await;
    assert_eq!(health["failovers"], json!([failover]));
    assert_eq!(health["shards"][1]["term"], 2);
    assert_eq!(health["shards"][1]["last_failover"], failover);
    assert_eq!(health["shards"][1]["primary"]["server"], replica);
    for other in [0, 2] {
        assert_eq!(health["shards"][other]["term"], 1);
        assert_eq!(health["shards"][other]["last_failover"], Value::Null);
    }
    let shards = until(&app, &base, "/api/shards", |s| s["map"]["version"] == 2).await;
    assert_eq!(shards["failovers"], json!([failover]));
    assert_eq!(shards["shards"][1]["term"], 2);
    assert_eq!(shards["shards"][1]["last_failover"], failover);
    assert_eq!(shards["shards"][0]["last_failover"], Value::Null);
    assert_lines(
        &metrics(&app, &base).await,
        &[
            "shardgate_map_version 2".into(),
            "shardgate_shard_term{shard=\"0\"} 1".into(),
            "shardgate_shard_term{shard=\"1\"} 2".into(),
            "shardgate_failovers_total{shard=\"0\",kind=\"failover\"} 0".into(),
            "shardgate_failovers_total{shard=\"1\",kind=\"failover\"} 1".into(),
            "shardgate_failovers_total{shard=\"1\",kind=\"switchover\"} 0".into(),
        ],
    );

    // A switchover back, planned, 380 ms.
    let map = record::store(
        &app.settings.cluster,
        PromotionKind::Switchover,
        ShardId(1),
        &replica,
        &primary,
        380,
    )
    .await
    .expect("record the switchover")
    .expect("the map still named the replica");
    assert_eq!((map.version.0, map.shards[1].term), (3, 3));
    let switchover = json!({
        "shard": 1, "kind": "switchover", "from": replica, "to": primary, "term": 3,
        "map_version": 3, "at": recorded_at(&app, 3).await, "took_ms": 380,
        "line": format!("shard-1 switched over to {primary} in 380 ms, term 3"),
    });
    let health = until(&app, &base, "/api/health", |h| {
        h["failovers"].as_array().is_some_and(|f| f.len() == 2)
    })
    .await;
    assert_eq!(health["failovers"], json!([switchover, failover]));
    assert_eq!(health["shards"][1]["last_failover"], switchover);
    assert_eq!(health["shards"][1]["term"], 3);

    // A gateway started now shows the same events, recorded before it started, and
    // both count two live gateways.
    let later = app.beside().await;
    let later_base = later.address.clone();
    let shards = until(&app, &later_base, "/api/shards", |s| {
        s["failovers"].as_array().is_some_and(|f| f.len() == 2)
            && s["gateways"].as_array().is_some_and(|g| g.len() == 2)
    })
    .await;
    assert_eq!(shards["failovers"], json!([switchover, failover]));
    assert_eq!(shards["shards"][1]["last_failover"], switchover);
    assert_eq!(shards["shards"][1]["term"], 3);
    until(&app, &base, "/api/shards", |s| {
        s["gateways"].as_array().is_some_and(|g| g.len() == 2)
    })
    .await;
    let wanted: Vec<String> = [
        "shardgate_map_version 3",
        "shardgate_gateways_live 2",
        "shardgate_shard_term{shard=\"1\"} 3",
        "shardgate_failovers_total{shard=\"1\",kind=\"failover\"} 1",
        "shardgate_failovers_total{shard=\"1\",kind=\"switchover\"} 1",
        "shardgate_failovers_total{shard=\"2\",kind=\"switchover\"} 0",
    ]
    .map(String::from)
    .into();
    assert_lines(&metrics(&app, &later_base).await, &wanted);
    assert_lines(&metrics(&app, &base).await, &wanted);
    drop(later);
}
