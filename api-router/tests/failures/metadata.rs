//! The metadata server stopped for real (`pg_ctl stop -m immediate`) under running
//! gateways: they keep serving reads and writes with the last map and say so in
//! `/api/health`; once it is back they follow changes again, without a restart.

use std::time::{Duration, Instant};

use api_router::startup::Application;
use control_plane::map::change;
use serde_json::Value;
use test_app::spawn_app;
use test_support::outage::serial;
use test_support::setup_sh;

use crate::support::{blocking, user};

/// Stops the metadata server; starts it again however the test ends.
struct MetaDown;

impl MetaDown {
    async fn begin() -> Self {
        blocking(|| setup_sh(&["pg", "stop", "meta"])).await;
        Self
    }
}

impl Drop for MetaDown {
    fn drop(&mut self) {
        setup_sh(&["pg", "start", "meta"]);
    }
}

async fn status(client: &reqwest::Client, base: &str) -> Value {
    let res = client
        .get(format!("{base}/api/health"))
        .send()
        .await
        .unwrap();
    res.json::<Value>().await.unwrap()["map"].clone()
}

#[tokio::test]
async fn gateways_keep_the_last_map_while_the_metadata_server_is_down_and_follow_again() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let other = Application::build(app.settings.clone()).await.unwrap();
    let other_url = format!("http://127.0.0.1:{}", other.port());
    let other_handle = other.handle();
    tokio::spawn(other.run_until_stopped());

    let down = MetaDown::begin().await;
    // Both notice within a few seconds, and say which map they keep.
    let deadline = Instant::now() + Duration::from_secs(5);
    for base in [&app.address, &other_url] {
        loop {
            let map = status(&app.client, base).await;
            if map["reachable"] == false {
                assert_eq!(map["version"], 1, "{map}");
                assert!(
                    map["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "{map}"
                );
                break;
            }
            assert!(Instant::now() < deadline, "{base} never noticed: {map}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Reads and writes go on, through both gateways, with the last map.
    for i in 0..40 {
        let base = if i % 2 == 0 { &app.address } else { &other_url };
        let key = format!("meta-down-{i}");
        let res = app
            .client
            .post(format!("{base}/api/write"))
            .header("x-shard-key", &key)
            .json(&user("r"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status().as_u16(),
            201,
            "write {i} while metadata is down"
        );
        let res = app.read_strong(&key, "users", "r").await;
        assert_eq!(
            res.status().as_u16(),
            200,
            "read {i} while metadata is down"
        );
    }
    let health = app.get_json("/api/health").await;
    assert_eq!(
        health["healthy"], true,
        "serving: healthy, with a stale-map note"
    );

    // Back: they reconnect, and a change made now reaches both within a second or two.
    drop(down);
    let settings = app.settings.cluster.clone();
    change::assign(&settings, &["0=1".to_string()], false)
        .await
        .expect("assign after the metadata server returned");
    let deadline = Instant::now() + Duration::from_secs(5);
    for base in [&app.address, &other_url] {
        loop {
            let map = status(&app.client, base).await;
            if map["version"] == 2 && map["reachable"] == true {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{base} never followed again: {map}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    std::mem::drop(other_handle.stop(false));
}
