//! TLS for a server's diesel-async connections (health checks, admin work in the
//! gateway): tokio-postgres's TLS hooks over the rustls configuration the wire client
//! uses (`wire::tls`), so both kinds of connection follow `database.sslmode` alike.
//! The URL asks for `sslmode=require`, so a server that will not speak TLS is refused
//! rather than used in plain text; the configuration decides what is checked.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use diesel::ConnectionError;
use diesel_async::pooled_connection::ManagerConfig;
use diesel_async::AsyncPgConnection;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_rustls::TlsConnector;

/// Makes diesel-async connect through TLS with `config` (or fail with its error).
pub(crate) fn connect_with_tls(
    manager: &mut ManagerConfig<AsyncPgConnection>,
    config: Result<Arc<ClientConfig>, String>,
) {
    manager.custom_setup = Box::new(move |url| {
        let config = config.clone();
        let url = format!("{url}&sslmode=require");
        Box::pin(async move {
            let tls = Rustls(config.map_err(ConnectionError::BadConnection)?);
            let (client, conn) = tokio_postgres::connect(&url, tls)
                .await
                .map_err(|e| ConnectionError::BadConnection(with_causes(&e)))?;
            AsyncPgConnection::try_from_client_and_connection(client, conn).await
        })
    });
}

/// An error and its causes (tokio-postgres names a failed handshake, its cause says
/// why: an unknown issuer, a name the certificate does not carry).
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// tokio-postgres's TLS connector, over rustls.
#[derive(Clone)]
struct Rustls(Arc<ClientConfig>);

impl<S> MakeTlsConnect<S> for Rustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Tls<S>;
    type TlsConnect = Connecting;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, host: &str) -> Result<Connecting, Self::Error> {
        Ok(Connecting {
            config: self.0.clone(),
            name: ServerName::try_from(host.to_owned())?,
        })
    }
}

/// One connection's handshake, for the host it was made for.
struct Connecting {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for Connecting
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Tls<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Tls<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let tls = TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await?;
            Ok(Tls(tls))
        })
    }
}

/// A TLS stream as tokio-postgres wants it.
struct Tls<S>(tokio_rustls::client::TlsStream<S>);

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
