//! The control plane's one PostgreSQL client, tokio-postgres ([`connect`]): slot moves,
//! telling shards their slots, imports, the metadata database. Its TLS hooks run over
//! the rustls configuration the request path's wire client uses
//! (`shard_manager::wire::tls_config`), so every connection follows `database.sslmode`
//! alike. With TLS the URL asks for `sslmode=require`, so a server that will not speak
//! TLS is refused rather than used in plain text; the configuration decides what is
//! checked.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::{Client, Socket};
use tokio_rustls::TlsConnector;

use shard_manager::config::DatabaseSettings;

/// A control-plane connection's driver (plain or TLS, as `database.sslmode` says).
pub type PgConnection = tokio_postgres::Connection<Socket, Tls<Socket>>;

/// Opens a tokio-postgres connection to the server `url` names (a
/// `shard_manager::servers::connection_url`) as `db.sslmode` asks: plain for `disable`, otherwise TLS
/// with the rustls configuration the wire client uses, refusing a server that will not
/// speak it. The error names the cause (an unknown issuer, a server without TLS).
pub async fn connect(url: &str, db: &DatabaseSettings) -> Result<(Client, PgConnection), String> {
    let (url, tls) = match shard_manager::wire::tls_config(db) {
        None => (format!("{url}&sslmode=disable"), Rustls(None)),
        Some(config) => (format!("{url}&sslmode=require"), Rustls(Some(config?))),
    };
    tokio_postgres::connect(&url, tls)
        .await
        .map_err(|e| with_causes(&e))
}

/// An error and its causes, on one line (tokio-postgres names a failed handshake or
/// statement, its cause says why: an unknown issuer, the server's own message).
pub fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// tokio-postgres's TLS connector, over rustls; None for `sslmode = disable` (the URL
/// then says `sslmode=disable`, so no handshake is ever asked of it).
#[derive(Clone)]
struct Rustls(Option<Arc<ClientConfig>>);

impl<S> MakeTlsConnect<S> for Rustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Tls<S>;
    type TlsConnect = Connecting;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, host: &str) -> Result<Connecting, Self::Error> {
        let Some(config) = &self.0 else {
            return Ok(Connecting(None));
        };
        Ok(Connecting(Some((
            config.clone(),
            ServerName::try_from(host.to_owned())?,
        ))))
    }
}

/// One connection's handshake, for the host it was made for (None: TLS is off).
struct Connecting(Option<(Arc<ClientConfig>, ServerName<'static>)>);

impl<S> TlsConnect<S> for Connecting
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Tls<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Tls<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let (config, name) = self.0.ok_or_else(|| {
                io::Error::other("TLS was asked for, but database.sslmode = disable")
            })?;
            let tls = TlsConnector::from(config).connect(name, stream).await?;
            Ok(Tls(tls))
        })
    }
}

/// A TLS stream as tokio-postgres wants it.
pub struct Tls<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for Tls<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Tls<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Tls<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}
