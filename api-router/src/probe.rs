//! `api-router probe --ready | --live`: the gateway's own health check, built into its
//! binary so that an image needs no shell, `curl` or `/dev/tcp` to be checked (a compose
//! `healthcheck` in exec form, a Kubernetes `exec` probe). It reads the same configuration
//! as the gateway, asks `GET /api/health/ready` (or `/live`) on the configured
//! `server.listen` (a wildcard address asked on loopback), and succeeds only on 200.
//!
//! The request is HTTP/1.0 without a `Host` header: the `Host` allow-list lets a request
//! without one pass, protected mode lets the probes pass from anywhere, and a PROXY
//! header is optional from a trusted proxy, so no setting of the gateway refuses it.
//! With `[server.tls]` it speaks HTTPS and trusts exactly the certificate the gateway is
//! configured to serve (`cert_path`'s first), whatever names it carries: the probe asks
//! its own gateway, by address.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

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
    #[error("{addr} failed the TLS handshake (the probe trusts only the certificate server.tls.cert_path names): {source}")]
    Handshake {
        addr: SocketAddr,
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
    let tls = match &server.tls {
        None => None,
        Some(tls) => {
            let served = tls
                .served_certificate()
                .map_err(|e| ProbeError::Refused(e.to_string()))?;
            Some(Arc::new(pinned(served)?))
        }
    };
    probe_listen(&server.listen, tls, endpoint, timeout)
}

/// [`probe`] of the gateway listening on `listen`, over TLS with `tls`.
fn probe_listen(
    listen: &str,
    tls: Option<Arc<ClientConfig>>,
    endpoint: Endpoint,
    timeout: Duration,
) -> Result<(), ProbeError> {
    let addrs = target(listen)?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(tcp) => return ask(tcp, tls, addr, endpoint, timeout),
            Err(source) => last = Some((addr, source)),
        }
    }
    match last {
        Some((addr, source)) => Err(ProbeError::Unreachable {
            addr,
            listen: listen.to_string(),
            source,
        }),
        // `target` refuses a listen address that resolves to none.
        None => Err(ProbeError::Refused(format!(
            "server.listen {listen:?} resolves to no address"
        ))),
    }
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

/// One request on `tcp` (over TLS with `tls`), the answer read to its end (HTTP/1.0:
/// the server closes).
fn ask(
    tcp: TcpStream,
    tls: Option<Arc<ClientConfig>>,
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
    // The socket's timeouts, set through a second handle while a TLS stream owns it.
    let socket = tcp.try_clone().map_err(silent)?;
    socket.set_write_timeout(Some(timeout)).map_err(silent)?;
    socket.set_read_timeout(Some(timeout)).map_err(silent)?;
    let mut stream: Box<dyn ReadWrite> = match tls {
        None => Box::new(tcp),
        Some(config) => Box::new(handshake(tcp, config, addr)?),
    };
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
        socket.set_read_timeout(Some(left)).map_err(silent)?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // A TLS peer that closed after its answer without close_notify.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => break,
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

/// A plain or a TLS stream.
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// The TLS handshake on `tcp`, done before the request so that its failure is named.
fn handshake(
    mut tcp: TcpStream,
    config: Arc<ClientConfig>,
    addr: SocketAddr,
) -> Result<rustls::StreamOwned<ClientConnection, TcpStream>, ProbeError> {
    let failed = |source| ProbeError::Handshake { addr, source };
    let mut conn = ClientConnection::new(config, ServerName::IpAddress(addr.ip().into()))
        .map_err(|e| failed(std::io::Error::other(e)))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(failed)?;
    }
    Ok(rustls::StreamOwned::new(conn, tcp))
}

/// A TLS client that trusts `served` alone: the certificate this gateway is configured
/// to serve. The handshake's signatures are checked as any client checks them.
fn pinned(served: CertificateDer<'static>) -> Result<ClientConfig, ProbeError> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let verifier = Pinned {
        served,
        provider: provider.clone(),
    };
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ProbeError::Refused(format!("no TLS client: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

#[derive(Debug)]
struct Pinned {
    served: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match end_entity.as_ref() == self.served.as_ref() {
            true => Ok(ServerCertVerified::assertion()),
            false => Err(rustls::Error::General(
                "the server's certificate is not the one server.tls.cert_path names".into(),
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
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
        probe_listen(&listen, None, Endpoint::Live, Duration::from_secs(5)).unwrap();
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
        let err = probe_listen(&listen, None, Endpoint::Ready, Duration::from_secs(5)).unwrap_err();
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
        let err =
            probe_listen(&listen, None, Endpoint::Ready, Duration::from_millis(300)).unwrap_err();
        assert!(matches!(err, ProbeError::Silent { .. }), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        drop(listener);
    }
}
