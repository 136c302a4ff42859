//! `api-router probe --ready | --live`: the gateway's own health check, built into its
//! binary so that an image needs no shell, `curl` or `/dev/tcp` to be checked (a compose
//! `healthcheck` in exec form, a Kubernetes `exec` probe). It reads the same configuration
//! as the gateway, asks `GET /api/health/ready` (or `/live`) on the configured
//! `server.listen` (a wildcard address asked on loopback), and succeeds only on 200.
//!
//! The request is HTTP/1.0 without a `Host` header: the `Host` allow-list lets a request
//! without one pass, protected mode lets the probes pass from anywhere, and a PROXY
//! header is optional from a trusted proxy, so no setting of the gateway refuses it.
//! Plain HTTP only: with `[server.tls]` the probe refuses to run (check HTTPS from the
//! orchestrator instead), rather than report a gateway it cannot ask.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::server::settings::ServerSettings;

/// Which of the two endpoints to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/api/health/ready`: the gateway wants traffic (503 while it drains before a stop).
    Ready,
    /// `/api/health/live`: the process serves HTTP.
    Live,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Self::Ready => "/api/health/ready",
            Self::Live => "/api/health/live",
        }
    }
}

/// Why the probe did not see 200. [`ProbeError::Refused`] is the configuration's fault
/// (the same probe fails the same way); every other variant says the gateway is not
/// (yet, or any more) healthy.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot probe: {0}")]
    Refused(String),
    #[error("nothing answers on {addr} (server.listen {listen}): {source}")]
    Unreachable {
        addr: SocketAddr,
        listen: String,
        source: std::io::Error,
    },
    #[error("{addr} did not answer GET {path} within {timeout:?}: {source}")]
    Silent {
        addr: SocketAddr,
        path: &'static str,
        timeout: Duration,
        source: std::io::Error,
    },
    #[error("{addr} answered GET {path} with something that is not HTTP: {line:?}")]
    NotHttp {
        addr: SocketAddr,
        path: &'static str,
        line: String,
    },
    #[error("{addr} answered GET {path} with {status}{}", detail(.body))]
    Unhealthy {
        addr: SocketAddr,
        path: &'static str,
        status: u16,
        body: String,
    },
}

impl ProbeError {
    /// Whether the configuration, not the gateway, is at fault.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Refused(_))
    }
}

fn detail(body: &str) -> String {
    let body = body.trim();
    match body.is_empty() {
        true => String::new(),
        false => format!(": {}", body.chars().take(300).collect::<String>()),
    }
}

/// Asks `endpoint` of the gateway that `server` configures; `Ok` on 200, within
/// `timeout` for the connection and again for the answer.
pub fn probe(
    server: &ServerSettings,
    endpoint: Endpoint,
    timeout: Duration,
) -> Result<(), ProbeError> {
    if server.tls.is_some() {
        return Err(ProbeError::Refused(
            "[server.tls] is set and the probe speaks plain HTTP; check https://.../api/health/ready from the orchestrator (Kubernetes: httpGet with scheme HTTPS)".into(),
        ));
    }
    probe_listen(&server.listen, endpoint, timeout)
}

/// [`probe`] of the gateway listening on `listen` (plain HTTP).
fn probe_listen(listen: &str, endpoint: Endpoint, timeout: Duration) -> Result<(), ProbeError> {
    let addrs = target(listen)?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return ask(stream, addr, endpoint, timeout),
            Err(source) => last = Some((addr, source)),
        }
    }
    let (addr, source) = last.expect("target() names at least one address");
    Err(ProbeError::Unreachable {
        addr,
        listen: listen.to_string(),
        source,
    })
}

/// The addresses to ask for `listen`: a wildcard (`0.0.0.0`, `[::]`) on loopback, a
/// name as it resolves, an address as it is.
fn target(listen: &str) -> Result<Vec<SocketAddr>, ProbeError> {
    let refused = |why: String| ProbeError::Refused(format!("server.listen {listen:?} {why}"));
    let addrs: Vec<SocketAddr> = listen
        .to_socket_addrs()
        .map_err(|e| refused(format!("is not a host:port that resolves ({e})")))?
        .map(|addr| match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
            IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
            _ => addr,
        })
        .collect();
    match addrs.first() {
        None => Err(refused("resolves to no address".into())),
        Some(addr) if addr.port() == 0 => Err(refused(
            "has port 0 (a port picked at start): name the port with --listen".into(),
        )),
        Some(_) => Ok(addrs),
    }
}

/// One request on `stream`, the answer read to its end (HTTP/1.0: the server closes).
fn ask(
    mut stream: TcpStream,
    addr: SocketAddr,
    endpoint: Endpoint,
    timeout: Duration,
) -> Result<(), ProbeError> {
    let path = endpoint.path();
    let silent = |source| ProbeError::Silent {
        addr,
        path,
        timeout,
        source,
    };
    let deadline = Instant::now() + timeout;
    stream.set_write_timeout(Some(timeout)).map_err(silent)?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nAccept: application/json\r\n\r\n").as_bytes())
        .map_err(silent)?;
    // At most 8 KiB: a health answer is a few dozen bytes.
    let mut answer = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while answer.len() < 8192 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(silent(std::io::ErrorKind::TimedOut.into()));
        }
        stream.set_read_timeout(Some(left)).map_err(silent)?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(silent(e)),
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    let status = status_of(&answer).ok_or_else(|| ProbeError::NotHttp {
        addr,
        path,
        line: answer
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(100)
            .collect(),
    })?;
    if status == 200 {
        return Ok(());
    }
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Err(ProbeError::Unhealthy {
        addr,
        path,
        status,
        body: body.to_string(),
    })
}

/// The status code of an HTTP/1.x answer's status line.
fn status_of(answer: &str) -> Option<u16> {
    let line = answer.lines().next()?;
    let mut parts = line.split(' ');
    let version = parts.next()?;
    let code = parts.next()?;
    (version.starts_with("HTTP/1.") && code.len() == 3)
        .then(|| code.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use super::*;

    /// A one-shot server on loopback answering `answer` to the first request, which it
    /// hands back.
    fn answering(answer: &'static str) -> (String, thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let listen = listener.local_addr().unwrap().to_string();
        let handle = thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let n = conn.read(&mut request).unwrap();
            conn.write_all(answer.as_bytes()).unwrap();
            String::from_utf8_lossy(&request[..n]).into_owned()
        });
        (listen, handle)
    }

    #[test]
    fn a_wildcard_address_is_asked_on_loopback() {
        let v4 = target("0.0.0.0:8080").unwrap();
        assert_eq!(v4, vec!["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]);
        let v6 = target("[::]:9000").unwrap();
        assert_eq!(v6, vec!["[::1]:9000".parse::<SocketAddr>().unwrap()]);
        let own = target("10.1.2.3:8080").unwrap();
        assert_eq!(own, vec!["10.1.2.3:8080".parse::<SocketAddr>().unwrap()]);
    }

    #[test]
    fn a_listen_address_the_probe_cannot_ask_is_a_refusal() {
        let port0 = target("127.0.0.1:0").unwrap_err();
        assert!(port0.is_refusal());
        assert!(port0.to_string().contains("port 0"), "{port0}");
        let garbled = target("no port here").unwrap_err();
        assert!(garbled.is_refusal());
        assert!(garbled.to_string().contains("no port here"), "{garbled}");
    }

    #[test]
    fn status_lines_are_read_and_anything_else_is_not_http() {
        assert_eq!(status_of("HTTP/1.1 200 OK\r\n\r\n"), Some(200));
        assert_eq!(status_of("HTTP/1.0 503 Service Unavailable\r\n"), Some(503));
        assert_eq!(status_of("SSH-2.0-OpenSSH_9.2\r\n"), None);
        assert_eq!(status_of("HTTP/1.1 20 OK\r\n"), None);
        assert_eq!(status_of(""), None);
    }

    #[test]
    fn the_probe_asks_the_endpoint_without_a_host_and_passes_on_200_only() {
        let (listen, request) = answering("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        probe_listen(&listen, Endpoint::Live, Duration::from_secs(5)).unwrap();
        let request = request.join().unwrap();
        assert!(
            request.starts_with("GET /api/health/live HTTP/1.0\r\n"),
            "{request:?}"
        );
        assert!(
            !request.to_ascii_lowercase().contains("host:"),
            "{request:?}"
        );

        let (listen, _) = answering(
            "HTTP/1.1 503 Service Unavailable\r\n\r\n{\"type\":\"draining\",\"status\":503}",
        );
        let err = probe_listen(&listen, Endpoint::Ready, Duration::from_secs(5)).unwrap_err();
        assert!(!err.is_refusal());
        let said = err.to_string();
        assert!(
            said.contains("/api/health/ready with 503") && said.contains("draining"),
            "{said}"
        );
    }

    #[test]
    fn a_server_that_never_answers_fails_within_the_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let listen = listener.local_addr().unwrap().to_string();
        let started = Instant::now();
        let err = probe_listen(&listen, Endpoint::Ready, Duration::from_millis(300)).unwrap_err();
        assert!(matches!(err, ProbeError::Silent { .. }), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        drop(listener);
    }
}
