//! The socket under a wire connection: plain TCP, or TLS over it (see `tls`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A connection's socket.
#[derive(Debug)]
pub(in crate::wire) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Whether the socket is open and the server has sent nothing unasked. Never waits:
    /// plain TCP costs one non-blocking receive; over TLS, one read through the TLS
    /// layer with a no-op waker, so records that carry no data (a session ticket) are
    /// taken in, and only a byte of the server's own is unasked.
    pub(in crate::wire) fn is_open_and_quiet(&mut self) -> bool {
        let mut probe = [0u8; 1];
        match self {
            Stream::Plain(tcp) => match tcp.try_read(&mut probe) {
                Err(e) => e.kind() == io::ErrorKind::WouldBlock,
                // Closed (0) or something unasked (a FATAL error before a close).
                Ok(_) => false,
            },
            Stream::Tls(tls) => {
                let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
                let mut buf = ReadBuf::new(&mut probe);
                // Ready means closed, unasked data, or a failure.
                Pin::new(&mut **tls)
                    .poll_read(&mut cx, &mut buf)
                    .is_pending()
            }
        }
    }

    /// Shuts the socket both ways now, without waiting: the server sees the end of the
    /// session at once and ends whatever it held. Every later read or write fails, so
    /// the connection is never reusable again.
    pub(in crate::wire) fn shut_now(&mut self) {
        let tcp = match self {
            Stream::Plain(tcp) => &*tcp,
            Stream::Tls(tls) => tls.get_ref().0,
        };
        let _ = socket2::SockRef::from(tcp).shutdown(std::net::Shutdown::Both);
    }

    /// Writes `bytes` only if the socket takes them at once (a goodbye on drop).
    pub(in crate::wire) fn try_write_now(&mut self, bytes: &[u8]) {
        match self {
            Stream::Plain(tcp) => {
                let _ = tcp.try_write(bytes);
            }
            Stream::Tls(tls) => {
                let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
                let mut tls = Pin::new(&mut **tls);
                if let Poll::Ready(Ok(_)) = tls.as_mut().poll_write(&mut cx, bytes) {
                    let _ = tls.poll_flush(&mut cx);
                }
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}
