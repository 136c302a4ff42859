//! The gateway's bounds on exports: at most `server.max_exports` stream at once (the
//! next gets 503 `exports-busy` with `Retry-After`), and a client that takes nothing
//! for `server.export_send_timeout_secs` has its connection closed, which frees its
//! slot.
//!
//! A client that does not read is a raw connection with a 4 KiB receive buffer that
//! reads the answer's head and nothing more: the table (8 MiB, twice the 4 MiB Linux
//! lets a socket's send buffer grow to by default) is more than the sockets' buffers and
//! the gateway's write buffer (a page, 128 KiB here) can take, so its export stays under
//! way, holding its slot, until the client reads, leaves or is cut off.
//! The cut-off is shown on each way the gateway accepts connections: plain, behind a
//! trusted proxy (PROXY protocol), and TLS.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use test_app::{assert_problem, spawn_app_with, TestApp};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::time::{sleep, timeout, Instant};

use crate::export_format::ndjson;

const RECORDS: usize = 1000;

/// `RECORDS` records of about 8 KiB in `users`: 8 MiB.
async fn big_table(via: &Transport) {
    let pad = "x".repeat(8000);
    for batch in (0..RECORDS).collect::<Vec<_>>().chunks(250) {
        let records: Vec<Value> = batch
            .iter()
            .map(|i| json!({"shard_key": format!("user_{}", i % 101), "id": format!("r{i}"), "data": {"i": i, "pad": pad}}))
            .collect();
        let res = via
            .client
            .post(format!("{}/api/bulk-write", via.base))
            .json(&json!({"table": "users", "records": records}))
            .send()
            .await
            .expect("bulk write");
        assert_eq!(res.status().as_u16(), 200, "{:?}", res.text().await);
    }
}

/// A connection to the gateway, plain or TLS.
trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

/// How a test reaches its gateway: over plain HTTP, or over HTTPS with the test's
/// certificate.
struct Transport {
    client: reqwest::Client,
    base: String,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl Transport {
    fn plain(app: &TestApp) -> Self {
        Self {
            client: app.client.clone(),
            base: app.address.clone(),
            tls: None,
        }
    }

    /// HTTPS to `localhost`, trusting `cert` only.
    fn tls(app: &TestApp, cert: &rcgen::Certificate) -> Self {
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(cert.pem().as_bytes()).unwrap())
            .resolve("localhost", ([127, 0, 0, 1], app.port).into())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self {
            client,
            base: format!("https://localhost:{}", app.port),
            tls: Some(tokio_rustls::TlsConnector::from(Arc::new(config))),
        }
    }
}

/// An export whose client reads the head of the answer and then nothing.
async fn unread_export(app: &TestApp, via: &Transport) -> (Box<dyn Conn>, String) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket
        .connect(format!("127.0.0.1:{}", app.port).parse().unwrap())
        .await
        .unwrap();
    let mut stream: Box<dyn Conn> = match &via.tls {
        None => Box::new(tcp),
        Some(tls) => Box::new(
            tls.connect("localhost".try_into().unwrap(), tcp)
                .await
                .expect("a TLS handshake"),
        ),
    };
    let request = format!(
        "GET /api/export?table=users HTTP/1.1\r\nHost: localhost:{}\r\nAccept: application/x-ndjson\r\n\r\n",
        app.port
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        timeout(Duration::from_secs(10), stream.read_exact(&mut byte))
            .await
            .expect("the head within 10 s")
            .expect("the head");
        head.push(byte[0]);
    }
    (stream, String::from_utf8(head).unwrap())
}

async fn export(via: &Transport) -> reqwest::Response {
    via.client
        .get(format!("{}/api/export?table=users", via.base))
        .send()
        .await
        .expect("export")
}

/// A whole export, read to its end line: how many records it counted.
async fn whole_export(res: reqwest::Response) -> u64 {
    assert_eq!(res.status().as_u16(), 200);
    let (records, end) = ndjson(&res.text().await.unwrap());
    assert_eq!(records.len(), RECORDS);
    end["end"]["records"].as_u64().expect("an end line")
}

/// The 503 of a gateway whose export slots are all taken.
async fn assert_busy(res: reqwest::Response, max: usize) {
    assert_eq!(
        res.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let problem = assert_problem(res, 503).await;
    assert_eq!(problem["type"], "urn:shardgate:problem:exports-busy");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("server.max_exports"), "{detail}");
    assert!(
        detail.contains(&format!("already streaming {max} exports")),
        "{detail}"
    );
}

#[tokio::test]
async fn past_max_exports_an_export_gets_503_with_retry_after_until_one_ends() {
    let app = spawn_app_with(|s| {
        s.server.max_exports = 2;
        // Not what frees a slot here.
        s.server.export_send_timeout_secs = 600;
        s.server.max_read_bytes = 256 << 10;
    })
    .await;
    let via = Transport::plain(&app);
    big_table(&via).await;

    let mut held = Vec::new();
    for _ in 0..2 {
        let (stream, head) = unread_export(&app, &via).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        held.push(stream);
    }
    assert_busy(export(&via).await, 2).await;
    // Still busy a while later: the unread exports hold their slots.
    sleep(Duration::from_millis(500)).await;
    assert_busy(export(&via).await, 2).await;

    // Their clients leave: their exports end and a new one streams whole.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    let res = loop {
        let res = export(&via).await;
        if res.status().as_u16() != 503 || Instant::now() > deadline {
            break res;
        }
        sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(whole_export(res).await, RECORDS as u64);
}

#[tokio::test]
async fn an_export_whose_client_reads_nothing_is_cut_off_after_the_send_timeout() {
    let app = spawn_app_with(|s| {
        s.server.max_exports = 1;
        s.server.export_send_timeout_secs = 1;
        s.server.max_read_bytes = 256 << 10;
    })
    .await;
    cut_off_after_the_send_timeout(&app, &Transport::plain(&app)).await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_a_client_that_reads_nothing_is_cut_off_too() {
    // The PROXY-protocol server is built from actix's parts: its connections' sockets
    // are recorded as the plain server's are.
    let app = spawn_app_with(|s| {
        s.server.max_exports = 1;
        s.server.export_send_timeout_secs = 1;
        s.server.max_read_bytes = 256 << 10;
        s.server.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    cut_off_after_the_send_timeout(&app, &Transport::plain(&app)).await;
}

#[tokio::test]
async fn over_tls_a_client_that_reads_nothing_is_cut_off_too() {
    let pair = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("sg-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key): (PathBuf, PathBuf) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, pair.cert.pem()).unwrap();
    std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
    let app = spawn_app_with(|s| {
        s.server.max_exports = 1;
        s.server.export_send_timeout_secs = 1;
        s.server.max_read_bytes = 256 << 10;
        s.server.tls = Some(api_router::server::tls::TlsSettings {
            cert_path: cert.clone(),
            key_path: key.clone(),
            hsts_max_age_secs: 0,
        });
    })
    .await;
    let via = Transport::tls(&app, &pair.cert);
    cut_off_after_the_send_timeout(&app, &via).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// With one export at most and a send timeout of 1 s: an unread export holds the one
/// slot, then is cut off, and a new export streams whole.
async fn cut_off_after_the_send_timeout(app: &TestApp, via: &Transport) {
    big_table(via).await;

    let started = Instant::now();
    let (mut stalled, head) = unread_export(app, via).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // The one slot is taken while the client does not read...
    assert_busy(export(via).await, 1).await;

    // ...and free past the timeout, the client still not reading: a new export is
    // admitted and streams whole.
    sleep(Duration::from_millis(2500)).await;
    let res = export(via).await;
    assert_eq!(
        res.status().as_u16(),
        200,
        "{:?} after {:?}",
        res.headers().get("content-type"),
        started.elapsed()
    );
    assert_eq!(whole_export(res).await, RECORDS as u64);

    // The stalled client's connection was closed before its export's end: what it can
    // still read ends (a reset or the end of the stream) without the end line.
    let mut rest = Vec::new();
    let read = timeout(Duration::from_secs(5), stalled.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the cut-off connection is closed");
    let text = String::from_utf8_lossy(&rest);
    assert!(
        !text.contains("{\"end\""),
        "the stalled export did not complete"
    );
    assert!(
        rest.len() < RECORDS * 8000,
        "{} bytes: not the whole table",
        rest.len()
    );
}
