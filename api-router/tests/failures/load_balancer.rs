//! Three gateways behind a real HAProxy, configured the way `GATEWAYS=3 ./setup.sh run`
//! configures it: requests spread over all three; one gateway stopped under a write
//! load costs at most the writes it had in flight, and none once HAProxy has seen it
//! go; started again on its port, it is back in rotation within seconds.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use api_router::server::settings::Settings;
use api_router::startup::Application;
use serde_json::json;
use test_app::spawn_app_with;
use test_support::outage::serial;

use crate::support::metric_sum;

/// Clients writing through the load balancer at once: each has at most one write in
/// flight when a gateway stops, so at most this many can fail then.
const WRITERS: usize = 4;

/// After this long, HAProxy has seen a stopped gateway go (checks every 1 s, 2 failures)
/// and nothing may fail any more.
const SETTLED: Duration = Duration::from_secs(3);

/// A real `haproxy -f` in front of the gateways; killed, and its directory removed,
/// however the test ends.
pub(crate) struct Haproxy {
    child: Child,
    dir: PathBuf,
    pub(crate) url: String,
}

impl Haproxy {
    /// The backend as `setup.sh` writes it: round robin, `GET /api/health/ready` every
    /// second (two failures take a gateway out, one success brings it back), a refused
    /// connection retried, the last time on another gateway, each connection opening
    /// with the client's address (PROXY protocol v2; the gateways must trust it).
    pub(crate) fn start(port: u16, gateways: &[u16]) -> Self {
        let dir = std::env::temp_dir().join(format!("sg-lb-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cfg = format!(
            "global\n    maxconn 256\n\
             defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    \
             timeout server 10s\n    retries 2\n    option redispatch\n\
             frontend fe\n    bind 127.0.0.1:{port}\n    default_backend gateways\n\
             backend gateways\n    balance roundrobin\n    option httpchk GET /api/health/ready\n    \
             http-check expect status 200\n    retry-on conn-failure empty-response\n    \
             http-request disable-l7-retry unless METH_GET || {{ req.hdr(idempotency-key) -m found }}\n"
        );
        for (i, gateway) in gateways.iter().enumerate() {
            cfg += &format!(
                "    server gw{i} 127.0.0.1:{gateway} send-proxy-v2 check inter 1s fall 2 rise 1\n"
            );
        }
        std::fs::write(dir.join("haproxy.cfg"), cfg).unwrap();
        let log = std::fs::File::create(dir.join("haproxy.log")).unwrap();
        let bin = ["/usr/sbin/haproxy", "haproxy"]
            .into_iter()
            .find(|b| Command::new(b).arg("-v").output().is_ok())
            .expect("haproxy (Debian package, installed by ./setup.sh up)");
        let child = Command::new(bin)
            .arg("-f")
            .arg(dir.join("haproxy.cfg"))
            .arg("-db")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start haproxy");
        let url = format!("http://127.0.0.1:{port}");
        Self { child, dir, url }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("haproxy.log")).unwrap_or_default()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port free now, below 32768: outside the kernel's ephemeral range, so no outgoing
/// connection takes it before it is bound, or while a stopped gateway is away from it;
/// above the local topology's ports (25430-26379).
pub(crate) fn low_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = (std::process::id() % 4000) as u16;
    for _ in 0..5000 {
        let port = 27000 + (base + NEXT.fetch_add(1, Ordering::Relaxed)) % 5000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 27000-31999");
}

/// Another gateway on the first one's databases, listening on `port`.
async fn start_gateway(settings: &Settings, port: u16) -> ServerHandle {
    let mut settings = settings.clone();
    settings.server.listen = format!("127.0.0.1:{port}");
    let app = Application::build(settings).await.expect("build gateway");
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    handle
}

/// Rows this gateway wrote (`shardgate_rows_written_total` over every shard, from its
/// own `/metrics`): the writes HAProxy sent it, not its health checks.
async fn writes_served(client: &reqwest::Client, port: u16) -> u64 {
    let base = format!("http://127.0.0.1:{port}");
    metric_sum(client, &base, "shardgate_rows_written_total", "").await as u64
}

/// One write through the load balancer; its status, or 0 when there was no answer.
async fn write(client: &reqwest::Client, lb: &str, key: &str) -> u16 {
    client
        .post(format!("{lb}/api/write"))
        .header("x-shard-key", key)
        .json(&json!({"table": "users", "id": key, "data": {"via": "haproxy"}}))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

fn ok(status: u16) -> bool {
    matches!(status, 200 | 201)
}

#[tokio::test]
async fn three_gateways_behind_haproxy_lose_one_and_take_it_back() {
    // No outage of the shared servers here, but none may start under this test either:
    // a shard down would fail writes that have nothing to do with the load balancer.
    let _serial = serial().await;
    let ports = [low_port(), low_port(), low_port()];
    let app = spawn_app_with(|s| {
        s.server.listen = format!("127.0.0.1:{}", ports[0]);
        // HAProxy's PROXY protocol believed from loopback, as `setup.sh` starts them.
        s.server.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    let client = &app.client;
    let mut others = vec![
        start_gateway(&app.settings, ports[1]).await,
        start_gateway(&app.settings, ports[2]).await,
    ];
    let lb = Haproxy::start(low_port(), &ports);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok(write(client, &lb.url, "lb-warm-up").await) {
        assert!(
            Instant::now() < deadline,
            "haproxy never served:\n{}",
            lb.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Round robin: every gateway takes its share.
    for i in 0..30 {
        let status = write(client, &lb.url, &format!("lb-spread-{i}")).await;
        assert!(ok(status), "write {i} through haproxy: {status}");
    }
    for port in ports {
        let served = writes_served(client, port).await;
        assert!(
            served >= 5,
            "gateway on {port} served {served} of 31 writes"
        );
    }

    // Writers keep writing while the gateway on ports[1] stops for good.
    let running = Arc::new(AtomicBool::new(true));
    let start = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (client, url, running) = (client.clone(), lb.url.clone(), running.clone());
            tokio::spawn(async move {
                let mut results = Vec::new();
                for n in 0.. {
                    if !running.load(Ordering::Relaxed) {
                        break;
                    }
                    let status = write(&client, &url, &format!("lb-outage-{w}-{n}")).await;
                    results.push((start.elapsed(), status));
                }
                results
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopped_at = start.elapsed();
    others.remove(0).stop(false).await;
    tokio::time::sleep(SETTLED + Duration::from_secs(2)).await;
    running.store(false, Ordering::Relaxed);
    let mut results = Vec::new();
    for writer in writers {
        results.extend(writer.await.unwrap());
    }
    let failed: Vec<_> = results.iter().filter(|(_, s)| !ok(*s)).collect();
    let late: Vec<_> = failed
        .iter()
        .filter(|(at, _)| *at > stopped_at + SETTLED)
        .collect();
    eprintln!(
        "one of three gateways stopped under {WRITERS} writers: {} of {} writes failed {:?}",
        failed.len(),
        results.len(),
        failed
    );
    assert!(
        failed.len() <= WRITERS,
        "more writes failed than were in flight: {failed:?}\n{}",
        lb.log()
    );
    assert!(
        late.is_empty(),
        "writes failed {SETTLED:?} after the stop: {late:?}"
    );
    assert!(
        results.len() > 100,
        "only {} writes in 5.5 s",
        results.len()
    );

    // Started again on its port, it takes writes again (fresh counters: a new gateway).
    let back = start_gateway(&app.settings, ports[1]).await;
    let started = Instant::now();
    let mut n = 0;
    while writes_served(client, ports[1]).await < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the returned gateway got no writes in 5 s:\n{}",
            lb.log()
        );
        let status = write(client, &lb.url, &format!("lb-back-{n}")).await;
        assert!(
            ok(status),
            "write {n} while the gateway came back: {status}"
        );
        n += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("back in rotation after {:?}", started.elapsed());

    back.stop(false).await;
    for handle in others {
        handle.stop(false).await;
    }
}
