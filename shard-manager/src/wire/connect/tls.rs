//! TLS to PostgreSQL (`database.sslmode`, `database.ssl_root_cert`): the SSLRequest
//! that asks a server to speak TLS, then a rustls handshake.
//!
//! `verify-full` checks the certificate as a browser does: it must chain to the
//! configured authorities and name the host the server is configured at (DNS name or
//! IP address). `require` encrypts without checking who answers. A server that will
//! not speak TLS is refused in both; nothing falls back to plain text.
//!
//! The rustls configuration is built once per server (`Target::new`), so the root
//! file is read at start-up; a file that cannot be used makes every connection to the
//! server fail with a message naming it.

use std::path::Path;
use std::sync::Arc;

use bytes::BytesMut;
use postgres_protocol::message::frontend;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::stream::Stream;
use crate::config::{DatabaseSettings, SslMode};
use crate::wire::error::WireError;

/// How a connection to one server is secured: plain, or TLS with this configuration
/// (or the reason it could not be built).
#[derive(Debug, Clone)]
pub(in crate::wire) enum Link {
    Plain,
    Tls {
        mode: SslMode,
        config: Result<Arc<ClientConfig>, String>,
    },
}

impl Link {
    pub(in crate::wire) fn new(db: &DatabaseSettings) -> Self {
        match db.sslmode {
            SslMode::Disable => Link::Plain,
            mode => Link::Tls {
                mode,
                config: client_config(mode, db.ssl_root_cert.as_deref()).map(Arc::new),
            },
        }
    }

    /// The rustls configuration (None: plain TCP).
    pub(in crate::wire) fn config(&self) -> Option<Result<Arc<ClientConfig>, String>> {
        match self {
            Link::Plain => None,
            Link::Tls { config, .. } => Some(config.clone()),
        }
    }

    /// Secures a freshly opened socket to `addr` (`host:port`, as configured).
    pub(in crate::wire) async fn secure(
        &self,
        mut tcp: TcpStream,
        addr: &str,
    ) -> Result<Stream, WireError> {
        let Link::Tls { mode, config } = self else {
            return Ok(Stream::Plain(tcp));
        };
        let config = config.clone().map_err(WireError::Tls)?;
        let host = host_of(addr);
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            WireError::Tls(format!(
                "{addr}: {host:?} is not a host name TLS can check: {e}"
            ))
        })?;
        let mut request = BytesMut::with_capacity(8);
        frontend::ssl_request(&mut request);
        tcp.write_all(&request).await?;
        match tcp.read_u8().await? {
            b'S' => {}
            answer => {
                return Err(WireError::Tls(format!(
                    "{addr} does not speak TLS (it answered {:?} to the SSL request), \
                     and database.sslmode = {} requires it; turn ssl on in its \
                     postgresql.conf",
                    answer as char,
                    mode_name(*mode)
                )))
            }
        }
        let tls = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| WireError::Tls(format!("TLS with {addr} failed: {e}")))?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

/// The rustls configuration `db` asks for (None: plain TCP), or why it cannot be
/// built; the tokio-postgres connections use it too (`servers::tls`).
pub fn tls_config(db: &DatabaseSettings) -> Option<Result<Arc<ClientConfig>, String>> {
    Link::new(db).config()
}

fn mode_name(mode: SslMode) -> &'static str {
    match mode {
        SslMode::Disable => "disable",
        SslMode::Require => "require",
        SslMode::VerifyFull => "verify-full",
    }
}

/// The host of `host:port` (an IPv6 address without its brackets).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(aws_lc_rs::default_provider())
}

/// The rustls configuration `mode` asks for (TLS 1.2 and 1.3, aws-lc-rs named
/// explicitly, so no process-wide default is needed).
fn client_config(mode: SslMode, roots: Option<&Path>) -> Result<ClientConfig, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = match mode {
        SslMode::VerifyFull => {
            let path = roots.ok_or(
                "database.sslmode = verify-full needs database.ssl_root_cert (a PEM file of \
                 the authorities the servers' certificates chain to)",
            )?;
            builder
                .with_root_certificates(root_store(path)?)
                .with_no_client_auth()
        }
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked(provider())))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// Every certificate in the PEM file at `path`.
fn root_store(path: &Path) -> Result<RootCertStore, String> {
    let named =
        |e: &dyn std::fmt::Display| format!("database.ssl_root_cert {}: {e}", path.display());
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| named(&e))? {
        store
            .add(cert.map_err(|e| named(&e))?)
            .map_err(|e| named(&e))?;
    }
    if store.is_empty() {
        return Err(named(
            &"holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(store)
}

/// `sslmode = require`: any certificate is accepted (as libpq's `require` without a
/// root file), but the handshake's signatures are still checked, so the session key
/// belongs to whoever holds that certificate's key.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_what_the_certificate_must_name() {
        assert_eq!(host_of("127.0.0.1:25432"), "127.0.0.1");
        assert_eq!(host_of("db.example.com:5432"), "db.example.com");
        assert_eq!(host_of("[::1]:5432"), "::1");
    }

    #[test]
    fn verify_full_needs_a_usable_root_file() {
        let err = client_config(SslMode::VerifyFull, None).unwrap_err();
        assert!(err.contains("database.ssl_root_cert"), "{err}");
        let err =
            client_config(SslMode::VerifyFull, Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        assert!(client_config(SslMode::Require, None).is_ok());
    }
}
