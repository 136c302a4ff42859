//! Three gateways behind a real HAProxy (the Debian package `./setup.sh` installs), as
//! `GATEWAYS=3 ./setup.sh run` starts them: requests spread over all three, and when one
//! is stopped the way a signal stops it (drain: not-ready while still serving, then
//! stop), the load balancer takes it out first and every request still succeeds. (A
//! gateway that dies instead is `failures::load_balancer`'s case.)

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use api_router::startup::Application;
use serde_json::json;
use test_app::spawn_app;

/// The haproxy child; killed however the test ends.
struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Rows this gateway wrote (Prometheus `shardgate_rows_written_total`, summed over
/// shards): only the writes count, not HAProxy's health checks.
async fn writes_served(client: &reqwest::Client, base: &str) -> u64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("shardgate_rows_written_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn write(client: &reqwest::Client, lb: &str, i: usize) -> u16 {
    client
        .post(format!("{lb}/api/write"))
        .header("x-shard-key", format!("lb-{i}"))
        .json(&json!({"table": "users", "id": "r", "data": {"i": i}}))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

#[tokio::test]
async fn three_gateways_behind_haproxy_survive_one_stopping() {
    let app = spawn_app().await;
    let mut gateways = vec![(app.address.clone(), None)];
    let mut settings = app.settings.clone();
    // A few of HAProxy's check intervals (200 ms, one failure takes a gateway out).
    settings.server.drain_ms = 800;
    for _ in 0..2 {
        let built = Application::build(settings.clone()).await.unwrap();
        let (url, handle) = (
            format!("http://127.0.0.1:{}", built.port()),
            built.shutdown(),
        );
        tokio::spawn(built.run_until_stopped());
        gateways.push((url, Some(handle)));
    }
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("sg-lb-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg = format!(
        "global\n    maxconn 256\ndefaults\n    mode http\n    timeout connect 1s\n    \
         timeout client 10s\n    timeout server 10s\n    retries 2\n    option redispatch\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend gws\n\
         backend gws\n    balance roundrobin\n    option httpchk GET /api/health/ready\n"
    );
    for (i, (url, _)) in gateways.iter().enumerate() {
        let addr = url.trim_start_matches("http://");
        cfg += &format!("    server g{i} {addr} check inter 200ms fall 1 rise 1\n");
    }
    std::fs::write(dir.join("haproxy.cfg"), cfg).unwrap();
    let bin = ["/usr/sbin/haproxy", "haproxy"]
        .into_iter()
        .find(|b| Command::new(b).arg("-v").output().is_ok())
        .expect("haproxy is installed by ./setup.sh up");
    let _lb = Haproxy(
        Command::new(bin)
            .arg("-f")
            .arg(dir.join("haproxy.cfg"))
            .arg("-db")
            .spawn()
            .unwrap(),
    );
    let lb = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while write(&app.client, &lb, 0).await != 201 && write(&app.client, &lb, 0).await != 200 {
        assert!(Instant::now() < deadline, "haproxy never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    for i in 0..30 {
        assert!(
            matches!(write(&app.client, &lb, i).await, 200 | 201),
            "write {i}"
        );
    }
    for (url, _) in gateways.iter().rev() {
        let served = writes_served(&app.client, url).await;
        assert!(
            served >= 5,
            "{url} served {served} of the writes through the LB"
        );
    }

    // One gateway is told to stop while the writes go on: it answers not-ready but
    // still serves, HAProxy takes it out, then it stops accepting; nothing fails.
    let stopping = gateways[1].1.take().unwrap();
    let stopped = tokio::spawn(async move { stopping.drain_and_stop().await });
    let draining = &gateways[1].0;
    let ready = app
        .client
        .get(format!("{draining}/api/health/ready"))
        .send()
        .await
        .unwrap();
    let problem = test_app::assert_problem(ready, 503).await;
    assert_eq!(
        problem["type"], "urn:shardgate:problem:draining",
        "not ready"
    );
    let live = app.client.get(format!("{draining}/api/health/live")).send();
    assert_eq!(live.await.unwrap().status(), 200, "but it is alive");
    // Writes through the drain and the stop, then 50 more once it is gone.
    let (mut failed, mut after_stop, mut i) = (Vec::new(), 0, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while after_stop < 50 {
        assert!(
            Instant::now() < deadline,
            "the drained gateway never stopped"
        );
        after_stop += usize::from(stopped.is_finished());
        let status = write(&app.client, &lb, 100 + i).await;
        if !matches!(status, 200 | 201) {
            failed.push((i, status));
        }
        i += 1;
    }
    assert!(i > 50, "writes ran during the drain too ({i} in all)");
    assert_eq!(
        failed,
        Vec::new(),
        "writes through the LB failed while one gateway drained and stopped (index, status; 0 = no answer)"
    );
    assert!(
        app.client
            .get(format!("{draining}/api/health/live"))
            .send()
            .await
            .is_err(),
        "the stopped gateway no longer accepts"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
