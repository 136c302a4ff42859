//! Slot moves are visible: a move recorded in the metadata database, with progress
//! recorded the way a mover records it, shows in `/api/shards` and `/metrics` within
//! the gateway's poll; once aborted it shows as finished and leaves the gauges.

use std::time::{Duration, Instant};

use control_plane::moves::state::ranges;
use control_plane::moves::undo;
use prometheus_parse::{Sample, Scrape, Value as Metric};
use serde_json::Value;
use test_app::{spawn_app, TestApp};

use crate::metrics_lint::promtool_lint;

/// Polls `/api/shards` until move `id` satisfies `done`; panics after 3 s (the gateway
/// reads moves every `metadata.poll_ms`, a second here, and a loaded machine is slower).
async fn shown_move(app: &TestApp, id: i64, done: impl Fn(&Value) -> bool) -> (Value, Value) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let shards = app.get_json("/api/shards").await;
        let found = shards["moves"]
            .as_array()
            .expect("moves is an array")
            .iter()
            .find(|m| m["id"] == id)
            .cloned();
        if let Some(found) = found.filter(|m| done(m)) {
            return (found, shards);
        }
        assert!(
            Instant::now() < deadline,
            "/api/shards never showed move {id} as expected: {}",
            shards["moves"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn scrape(app: &TestApp) -> Vec<Sample> {
    let text = crate::metrics_lint::metrics_text(app).await;
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("valid Prometheus text")
        .samples
}

/// The gauge `metric` of move `id`, with its phase label.
fn gauge(samples: &[Sample], metric: &str, id: i64) -> Option<(f64, String)> {
    samples
        .iter()
        .find(|s| s.metric == metric && s.labels.get("move") == Some(id.to_string().as_str()))
        .map(|s| match s.value {
            Metric::Gauge(v) => (v, s.labels.get("phase").unwrap_or_default().to_owned()),
            ref other => panic!("{metric} is not a gauge: {other:?}"),
        })
}

fn moves_active(samples: &[Sample]) -> f64 {
    match samples
        .iter()
        .find(|s| s.metric == "shardgate_moves_active")
    {
        Some(Sample {
            value: Metric::Gauge(v),
            ..
        }) => *v,
        other => panic!("no shardgate_moves_active gauge: {other:?}"),
    }
}

#[tokio::test]
async fn a_move_in_progress_shows_in_shards_and_metrics_until_it_is_aborted() {
    // Arrange: a move of 3 slots from shard 0 to shard 1, recorded (not run), with
    // progress recorded the way the mover records it.
    let app = spawn_app().await;
    let before = app.get_json("/api/shards").await;
    assert_eq!(before["moves"], serde_json::json!([]), "no move yet");
    let mv = app.record_move(3, 1000, 250, 7).await;

    // Act
    let (shown, shards) = shown_move(&app, mv.id, |m| m["rows_behind"] == 7).await;
    let samples = scrape(&app).await;

    // Assert: /api/shards
    assert_eq!(shown["kind"], "move-slots");
    assert_eq!(
        (shown["source"].as_u64(), shown["target"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(shown["slots"], ranges(&mv.detail.slots).as_str());
    assert_eq!(shown["slot_count"], 3);
    assert_eq!(shown["phase"], "capturing");
    assert_eq!(shown["active"], true);
    assert_eq!(shown["running"], false, "no mover runs it");
    assert_eq!(shown["rows_total"], 1000);
    assert_eq!(shown["rows_copied"], 250);
    assert_eq!(shown["rows_replayed"], 30);
    assert_eq!(shown["fence_ms"], Value::Null);
    // 757 rows left (750 to copy, 7 behind) at 250 rows over the move's age when read.
    let read_secs = shards["moves_read"]["read_ms_ago"].as_f64().unwrap() / 1000.0;
    let age_at_read = shown["age_secs"].as_f64().unwrap() - read_secs;
    let eta = shown["eta_secs"]
        .as_f64()
        .expect("an ETA once rows are copied");
    let expected = 757.0 * age_at_read / 250.0;
    assert!(
        eta > 0.0 && (eta - expected).abs() < 0.05,
        "eta {eta}, expected {expected} for an age of {age_at_read} s when read"
    );
    assert!(shown["advice"]
        .as_str()
        .unwrap()
        .contains(&format!("moves resume {}", mv.id)));
    assert!(shards["moves_read"]["read_ms_ago"].as_u64().unwrap() < 2000);
    let doc = app.get_json("/api-docs/openapi.json").await;
    let schema = serde_json::json!({"$ref": "#/components/schemas/ShardsResponse"});
    let wrong = crate::spec::schema::validate(&doc, &schema, &shards);
    assert!(wrong.is_empty(), "not what the spec publishes: {wrong:?}");
    assert_eq!(shards["moves_read"]["error"], Value::Null);

    // Assert: /metrics, to Prometheus's conventions with a move's families in it
    assert_eq!(moves_active(&samples), 1.0);
    if let Some(lint) = promtool_lint(&app).await {
        assert_eq!(lint, "", "promtool check metrics");
    }
    let phase = "capturing".to_owned();
    for (metric, value) in [
        ("shardgate_move_rows_to_copy", 1000.0),
        ("shardgate_move_rows_copied", 250.0),
        ("shardgate_move_rows_behind", 7.0),
        ("shardgate_move_slots", 3.0),
    ] {
        assert_eq!(
            gauge(&samples, metric, mv.id),
            Some((value, phase.clone())),
            "{metric}"
        );
    }
    let labels = &samples
        .iter()
        .find(|s| s.metric == "shardgate_move_slots")
        .unwrap()
        .labels;
    assert_eq!(
        (labels.get("source"), labels.get("target")),
        (Some("0"), Some("1"))
    );
    let (eta, _) = gauge(&samples, "shardgate_move_eta_seconds", mv.id).expect("an ETA gauge");
    assert!(eta > 0.0, "{eta}");

    // Act: abort it.
    undo::abort(&app.settings.cluster, mv.id)
        .await
        .expect("abort");
    let (aborted, _) = shown_move(&app, mv.id, |m| m["phase"] == "aborted").await;
    let samples = scrape(&app).await;

    // Assert: still listed, as finished; no longer in the gauges.
    assert_eq!(aborted["active"], false);
    assert_eq!(aborted["eta_secs"], Value::Null);
    assert_eq!(aborted["advice"], "aborted: nothing moved");
    assert_eq!(moves_active(&samples), 0.0);
    assert_eq!(gauge(&samples, "shardgate_move_rows_to_copy", mv.id), None);
}
