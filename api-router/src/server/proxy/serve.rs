//! The gateway's HTTP server when `server.trusted_proxies` is set: each accepted
//! connection from a trusted proxy first has its PROXY protocol header read (v1 or v2,
//! within [`HEADER_WAIT`]), and the client it declares becomes the request's peer
//! address, which protected mode, the audit log and everything else read. The proxy's
//! own address is kept in the connection's data as [`Via`].
//!
//! From any other peer nothing is read: the bytes go to HTTP as sent, so a PROXY line
//! from an untrusted client is not believed (it is not HTTP: 400), and no header
//! (`X-Forwarded-For` included) ever changes who the client is. A trusted peer that
//! sends no header is its own client (a local `curl` to the gateway's port).
//!
//! Why the PROXY protocol and not a forwarded header: it comes before the first HTTP
//! byte, from the proxy alone, so no client can put one in; a header would need every
//! hop to strip the client's own copy.
//!
//! actix-web's `HttpServer` has no hook to read bytes before HTTP, so this builds the
//! same thing from its parts: an `actix_server` listener, a service reading the
//! header, then actix-http's `HttpService` with the app (HTTP/1.1, plain TCP; TLS with
//! trusted proxies is refused at start: terminate it at the proxy).

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::{HttpService, Protocol, Request, Response};
use actix_service::{
    fn_service, map_config, IntoServiceFactory, ServiceFactory, ServiceFactoryExt,
};
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Server};
use actix_web::rt::net::TcpStream;
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use super::header::{parse, Parsed, V2_MAX};
use super::trusted::TrustedProxies;
use crate::server::stall::ConnSocket;

/// How long a trusted proxy's connection may take to send its header.
pub const HEADER_WAIT: Duration = Duration::from_secs(5);

/// The TCP peer of a connection whose client a trusted proxy declared (in the
/// connection's data: `req.conn_data::<Via>()`).
#[derive(Debug, Clone, Copy)]
pub struct Via(pub SocketAddr);

/// How the server runs.
pub struct Options {
    pub workers: usize,
    pub shutdown_timeout_secs: u64,
}

/// Binds the server to `listener`, serving the app `factory` makes (one per worker).
pub fn serve<F, I, S, B>(
    listener: TcpListener,
    trusted: TrustedProxies,
    options: Options,
    factory: F,
) -> io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error>,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>>,
    B: MessageBody + 'static,
{
    let local = listener.local_addr()?;
    let trusted = Arc::new(trusted);
    let builder = Server::build();
    // Idle keep-alive connections close when a stop begins, as HttpServer has them.
    let stopping = builder.graceful_shutdown_signal();
    Ok(builder
        .workers(options.workers)
        .shutdown_timeout(options.shutdown_timeout_secs)
        // Signals are the drain's (crate::server::drain), as with HttpServer.
        .disable_signals()
        .listen("shardgate-proxied", listener, move || {
            let trusted = trusted.clone();
            let stopping = stopping.clone();
            let app = factory()
                .into_factory()
                .map_err(|e| e.into().error_response());
            fn_service(move |io: TcpStream| {
                let trusted = trusted.clone();
                async move { accept(io, &trusted).await }
            })
            .and_then(
                HttpService::build()
                    .graceful_shutdown_signal(move || {
                        let stopping = stopping.clone();
                        async move { stopping.notified().await }
                    })
                    .local_addr(local)
                    .on_connect_ext(|io: &Proxied, ext| {
                        if let Some(via) = io.via {
                            ext.insert(Via(via));
                        }
                        ext.insert(ConnSocket::of(&io.io));
                    })
                    .finish(map_config(app, |_| AppConfig::default())),
            )
        })?
        .run())
}

/// Reads a trusted peer's header; the connection for HTTP and the client's address.
async fn accept(
    mut io: TcpStream,
    trusted: &TrustedProxies,
) -> Result<(Proxied, Protocol, Option<SocketAddr>), actix_http::error::DispatchError> {
    let peer = io.peer_addr().ok();
    let _ = io.set_nodelay(true);
    let mut read = BytesMut::new();
    if !peer.is_some_and(|p| trusted.trusts(p.ip())) {
        return Ok((Proxied::new(io, read, None), Protocol::Http1, peer));
    }
    let header = match tokio::time::timeout(HEADER_WAIT, read_header(&mut io, &mut read)).await {
        Ok(header) => header,
        // Nothing came: HTTP's own request timeout deals with it.
        Err(_) => Parsed::Absent,
    };
    let client = match header {
        Parsed::Header { len, client } => {
            read.advance(len);
            client.or(peer)
        }
        // No header: the trusted peer is its own client.
        Parsed::Absent | Parsed::NeedMore => {
            return Ok((Proxied::new(io, read, None), Protocol::Http1, peer));
        }
        Parsed::Invalid(why) => {
            tracing::warn!(peer = ?peer, why, "closing a trusted proxy's connection: bad PROXY header");
            return Err(io::Error::new(io::ErrorKind::InvalidData, why).into());
        }
    };
    Ok((Proxied::new(io, read, peer), Protocol::Http1, client))
}

/// Reads until the bytes are a header, or not one (or the peer stops sending).
async fn read_header(io: &mut TcpStream, read: &mut BytesMut) -> Parsed {
    loop {
        match parse(read) {
            Parsed::NeedMore if read.len() <= V2_MAX => {}
            Parsed::NeedMore => return Parsed::Invalid("a PROXY header too long".into()),
            decided => return decided,
        }
        read.reserve(512);
        match io.read_buf(read).await {
            Ok(0) | Err(_) => return Parsed::Absent,
            Ok(_) => {}
        }
    }
}

/// A connection with the bytes read past its header given back first.
pub struct Proxied {
    io: TcpStream,
    pending: Bytes,
    via: Option<SocketAddr>,
}

impl Proxied {
    fn new(io: TcpStream, pending: BytesMut, via: Option<SocketAddr>) -> Self {
        Self {
            io,
            pending: pending.freeze(),
            via,
        }
    }
}

impl AsyncRead for Proxied {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.pending.is_empty() {
            let n = self.pending.len().min(buf.remaining());
            buf.put_slice(&self.pending[..n]);
            self.pending.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Proxied {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
