//! TLS with rustls: `[server.tls]` names a PEM certificate chain and its private key;
//! both are read once at start, and a file that is missing, unreadable or not what it
//! must be stops the start with a message naming the file. Without the section the
//! gateway speaks plain HTTP (behind a proxy that terminates TLS, or on loopback).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::aws_lc_rs;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

/// `[server.tls]`: present means HTTPS only on `server.listen`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM file: the server certificate first, then any intermediates.
    pub cert_path: PathBuf,
    /// PEM file: the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
    /// `Strict-Transport-Security: max-age` sent on every answer, seconds; 0 sends
    /// no HSTS header (a browser then keeps trying plain HTTP first).
    #[serde(default = "default_hsts")]
    pub hsts_max_age_secs: u64,
}

fn default_hsts() -> u64 {
    // One year: what browsers' preload lists ask for.
    31_536_000
}

impl TlsSettings {
    /// The `[server.tls]` keys and their values, for the configuration reference
    /// (docs/src/configuration.md): a test compares them with the fields.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "cert_path": self.cert_path,
            "key_path": self.key_path,
            "hsts_max_age_secs": self.hsts_max_age_secs,
        })
    }
}

/// Why the TLS files cannot be used; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the TLS certificate file {0} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificate(PathBuf),
    #[error("the TLS {what} {path} is not valid PEM: {detail}")]
    BadPem {
        what: &'static str,
        path: PathBuf,
        detail: String,
    },
    #[error("the TLS key file {0} holds no private key (-----BEGIN PRIVATE KEY-----, RSA or EC)")]
    NoKey(PathBuf),
    #[error("the TLS certificate {cert} and key {key} cannot be used together: {detail}")]
    Unusable {
        cert: PathBuf,
        key: PathBuf,
        detail: String,
    },
}

impl TlsSettings {
    /// The `Strict-Transport-Security` value this configuration asks for, if any.
    pub fn hsts(&self) -> Option<String> {
        (self.hsts_max_age_secs > 0).then(|| format!("max-age={}", self.hsts_max_age_secs))
    }

    /// The certificate the gateway serves (the chain's first): what `api-router probe`
    /// trusts, alone (`crate::probe`).
    pub fn served_certificate(&self) -> Result<CertificateDer<'static>, TlsError> {
        Ok(certificates(&self.cert_path)?.swap_remove(0))
    }

    /// Reads both files and builds the rustls configuration (TLS 1.2 and 1.3, the
    /// aws-lc-rs provider named explicitly, so no process-wide default is needed).
    pub fn server_config(&self) -> Result<ServerConfig, TlsError> {
        let certs = certificates(&self.cert_path)?;
        let key = private_key(&self.key_path)?;
        let unusable = |e: rustls::Error| TlsError::Unusable {
            cert: self.cert_path.clone(),
            key: self.key_path.clone(),
            detail: e.to_string(),
        };
        ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(unusable)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(unusable)
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read("certificate file", path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem {
            what: "certificate file",
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
    match certs.is_empty() {
        true => Err(TlsError::NoCertificate(path.to_owned())),
        false => Ok(certs),
    }
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("key file", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoKey(path.to_owned()),
        e => TlsError::BadPem {
            what: "key file",
            path: path.to_owned(),
            detail: e.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(cert: &Path, key: &Path) -> TlsSettings {
        TlsSettings {
            cert_path: cert.to_owned(),
            key_path: key.to_owned(),
            hsts_max_age_secs: 0,
        }
    }

    #[test]
    fn every_unusable_file_is_named() {
        let dir = std::env::temp_dir().join(format!("sg-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let broken = dir.join("broken.pem");
        std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();

        let err = settings(&missing, &empty).server_config().unwrap_err();
        assert!(matches!(err, TlsError::Read { .. }), "{err}");
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let err = settings(&empty, &empty).server_config().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the TLS certificate file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                empty.display()
            )
        );
        let err = settings(&broken, &empty).server_config().unwrap_err();
        assert!(matches!(err, TlsError::BadPem { .. }), "{err}");
        assert!(err.to_string().contains("broken.pem"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_certificate_and_its_key_build_a_config_and_another_key_is_refused() {
        let dir = std::env::temp_dir().join(format!("sg-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let pair = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let (cert, key, other_key) = (
            dir.join("cert.pem"),
            dir.join("key.pem"),
            dir.join("other.pem"),
        );
        std::fs::write(&cert, pair.cert.pem()).unwrap();
        std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
        std::fs::write(&other_key, other.serialize_pem()).unwrap();

        let config = settings(&cert, &key).server_config().unwrap();
        assert!(
            config.alpn_protocols.is_empty(),
            "actix adds the ALPN protocols it serves itself"
        );

        let err = settings(&cert, &other_key).server_config().unwrap_err();
        assert!(matches!(err, TlsError::Unusable { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("cert.pem") && text.contains("other.pem"),
            "{text}"
        );
        let err = settings(&cert, &cert).server_config().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the TLS key file {} holds no private key (-----BEGIN PRIVATE KEY-----, RSA or EC)",
                cert.display()
            )
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn hsts_is_sent_unless_turned_off() {
        let mut s = settings(Path::new("c"), Path::new("k"));
        assert_eq!(s.hsts(), None);
        s.hsts_max_age_secs = 31_536_000;
        assert_eq!(s.hsts().as_deref(), Some("max-age=31536000"));
    }
}
