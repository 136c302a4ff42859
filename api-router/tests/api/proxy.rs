//! The real client behind a load balancer (PROXY protocol), with a real HAProxy sending
//! `send-proxy-v2` as `GATEWAYS=N ./setup.sh run` configures it, in front of a gateway
//! that trusts 127.0.0.1: the gateway sees the address HAProxy reports (a client bound
//! to 127.0.0.2 is audited as 127.0.0.2, via 127.0.0.1); a PROXY line from a peer that
//! is not trusted is not believed, nor is `X-Forwarded-For`; and a client a trusted
//! proxy declares beyond loopback is refused in protected mode, in v1 and v2.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use test_app::{spawn_app_with, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::audit::{captured, line_with};

/// The haproxy child, killed, and its configuration's directory, removed, however the
/// test ends.
struct Haproxy(Child, std::path::PathBuf);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// HAProxy on a free port in front of `gateway`, sending the PROXY protocol (v2).
fn haproxy(gateway: u16) -> (Haproxy, u16) {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("sg-proxy-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = format!(
        "global\n    maxconn 64\ndefaults\n    mode http\n    timeout connect 1s\n    \
         timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend gws\n\
         backend gws\n    option httpchk GET /api/health/ready\n    \
         server g0 127.0.0.1:{gateway} send-proxy-v2 check inter 200ms fall 1 rise 1\n"
    );
    std::fs::write(dir.join("haproxy.cfg"), cfg).unwrap();
    let bin = ["/usr/sbin/haproxy", "haproxy"]
        .into_iter()
        .find(|b| Command::new(b).arg("-v").output().is_ok())
        .expect("haproxy is installed by ./setup.sh up");
    let child = Command::new(bin)
        .arg("-f")
        .arg(dir.join("haproxy.cfg"))
        .arg("-db")
        .spawn()
        .unwrap();
    (Haproxy(child, dir), port)
}

/// Sends `head` (a PROXY header, or nothing) and a GET of `path` on a fresh connection
/// to the gateway; the answer's status (0: the connection was closed without one).
async fn raw_get(app: &TestApp, head: &[u8], path: &str, extra: &str) -> u16 {
    let mut conn = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n");
    conn.write_all(&[head, request.as_bytes()].concat())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A PROXY v2 header declaring `ip:port` (TCP over IPv4) to 127.0.0.1:8081.
fn v2(ip: [u8; 4], port: u16) -> Vec<u8> {
    let mut out = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    out.extend([0x21, 0x11, 0, 12]);
    out.extend(ip);
    out.extend([127, 0, 0, 1]);
    out.extend(port.to_be_bytes());
    out.extend(8081u16.to_be_bytes());
    out
}

#[tokio::test]
async fn the_client_haproxy_reports_is_the_one_protected_mode_and_the_audit_see() {
    // Arrange: a gateway trusting 127.0.0.1, behind HAProxy sending PROXY v2.
    captured();
    let app = spawn_app_with(|s| s.server.trusted_proxies = vec!["127.0.0.1/32".into()]).await;
    let (_lb, lb_port) = haproxy(app.port);
    let client = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let lb = format!("http://127.0.0.1:{lb_port}");
    loop {
        let res = client.get(format!("{lb}/api/health/live")).send().await;
        if res.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "haproxy never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Act + Assert (1): through HAProxy, the gateway sees the client's own address.
    let res = client
        .get(format!("{lb}/api/shards?marker=via-haproxy"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "a loopback client is served");
    let line = line_with("marker=via-haproxy").await;
    assert!(
        line.contains("peer=\"127.0.0.2\""),
        "the client HAProxy reports: {line}"
    );
    assert!(
        line.contains("via=\"127.0.0.1\""),
        "the proxy it came through: {line}"
    );

    // (3) A client a trusted proxy declares beyond loopback: refused in protected mode,
    // but for the liveness and readiness probes, which carry no data.
    let v1 = b"PROXY TCP4 203.0.113.7 127.0.0.1 51000 8081\r\n";
    assert_eq!(raw_get(&app, v1, "/api/health", "").await, 403, "v1");
    assert_eq!(
        raw_get(&app, &v2([203, 0, 113, 7], 51000), "/api/health", "").await,
        403,
        "v2"
    );
    assert_eq!(
        raw_get(&app, v1, "/api/health/live", "").await,
        200,
        "probe"
    );
    assert_eq!(
        raw_get(&app, &v2([203, 0, 113, 7], 51000), "/api/health/ready", "").await,
        200,
        "probe"
    );
    assert_eq!(
        raw_get(&app, &v2([127, 0, 0, 9], 51000), "/api/health", "").await,
        200
    );
    let v1_local = b"PROXY TCP4 127.0.0.3 127.0.0.1 51000 8081\r\n";
    assert_eq!(
        raw_get(&app, v1_local, "/api/shards?marker=declared", "").await,
        200
    );
    let line = line_with("marker=declared").await;
    assert!(line.contains("peer=\"127.0.0.3\""), "{line}");
    // A trusted peer without a header is its own client; a broken header is refused.
    assert_eq!(raw_get(&app, b"", "/api/health/live", "").await, 200);
    assert_eq!(
        raw_get(&app, b"PROXY TCP4 nonsense\r\n", "/api/health/live", "").await,
        0
    );
}

#[tokio::test]
async fn a_proxy_header_from_a_peer_that_is_not_trusted_is_not_believed() {
    // Arrange: only 127.0.0.2 is trusted; the test connects from 127.0.0.1.
    let app = spawn_app_with(|s| s.server.trusted_proxies = vec!["127.0.0.2/32".into()]).await;
    let default = spawn_app_with(|_| {}).await;

    for app in [&app, &default] {
        // A PROXY line from an untrusted peer is not read: it is not HTTP.
        let v1 = b"PROXY TCP4 127.0.0.1 127.0.0.1 51000 8081\r\n";
        assert_eq!(raw_get(app, v1, "/api/health/live", "").await, 400);
        assert_eq!(
            raw_get(app, &v2([127, 0, 0, 1], 1), "/api/health/live", "").await,
            400
        );
        // Nor does a forwarded header make the client someone else.
        let forged = "X-Forwarded-For: 203.0.113.7\r\nForwarded: for=203.0.113.7\r\n";
        assert_eq!(raw_get(app, b"", "/api/health/live", forged).await, 200);
    }
}
