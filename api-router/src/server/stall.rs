//! A streamed answer whose client stopped reading: cut off after a while, so it frees
//! what it holds.
//!
//! actix-http stops asking a streamed body for more once its write buffer is full
//! (the client takes nothing, the socket's buffers are full): the body is then never
//! polled again, so it cannot notice the stall itself, and nothing in actix closes such
//! a connection. A [`SendWatch`] does it from outside: the body tells it when it hands a
//! chunk over ([`SendWatch::handed`]) and when it is asked for the next one
//! ([`SendWatch::asked`]); a chunk not taken within the timeout shuts the connection's
//! socket down (an abortive close: buffered bytes are dropped). The connection fails,
//! actix drops it and the body with it, and everything the body held goes.
//!
//! The socket comes from [`on_connect`], which records each connection's file
//! descriptor ([`ConnSocket`]) for the three ways the gateway accepts connections
//! (plain TCP, TLS, behind a PROXY-protocol load balancer).

use std::any::Any;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
use actix_web::HttpRequest;
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, Instant};

/// The file descriptor of a connection's socket, in its data (`req.conn_data`).
#[derive(Debug, Clone, Copy)]
pub struct ConnSocket(RawFd);

impl ConnSocket {
    /// The socket under `io`.
    pub fn of(io: &impl AsRawFd) -> Self {
        Self(io.as_raw_fd())
    }
}

/// For `HttpServer::on_connect`: records the socket of a plain or a TLS connection.
pub fn on_connect(io: &dyn Any, ext: &mut Extensions) {
    type Tls = actix_tls::accept::rustls_0_23::TlsStream<TcpStream>;
    if let Some(tcp) = io.downcast_ref::<TcpStream>() {
        ext.insert(ConnSocket::of(tcp));
    } else if let Some(tls) = io.downcast_ref::<Tls>() {
        ext.insert(ConnSocket::of(&**tls));
    }
}

/// A request's connection, which can be cut off: its own handle on the socket, so it
/// stays valid whatever happens to the connection meanwhile.
#[derive(Debug)]
pub struct Cutoff(socket2::Socket);

impl Cutoff {
    /// The connection `req` came on; None when its socket was not recorded or cannot
    /// be duplicated (out of file descriptors).
    pub fn of(req: &HttpRequest) -> Option<Self> {
        let ConnSocket(fd) = *req.conn_data::<ConnSocket>()?;
        // SAFETY: `req` is being served on this connection, so its socket is open for
        // the whole of this call; it is duplicated at once, and only the duplicate is
        // kept.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let owned = borrowed.try_clone_to_owned().ok()?;
        Some(Self(socket2::Socket::from(owned)))
    }

    /// Closes the connection abortively: the client gets a reset, the gateway's
    /// pending write fails, and the kernel drops the bytes it still buffered.
    fn cut(self) {
        let _ = self.0.set_linger(Some(Duration::ZERO));
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

/// Watches that a streamed body's chunks are taken; cuts its connection off when one
/// waits longer than the timeout. Stops watching when dropped (with the body).
#[derive(Debug)]
pub struct SendWatch {
    handed: Arc<Handed>,
    task: JoinHandle<()>,
}

/// When the last chunk was handed over and not asked past yet: ms since `start`, plus
/// one (0: none waiting).
#[derive(Debug)]
struct Handed {
    start: Instant,
    at: AtomicU64,
}

impl Handed {
    fn waiting_since(&self) -> Option<Instant> {
        match self.at.load(Ordering::Acquire) {
            0 => None,
            ms => Some(self.start + Duration::from_millis(ms - 1)),
        }
    }
}

impl SendWatch {
    /// Starts watching; `what` names the stream in the log line of a cut-off.
    pub fn spawn(timeout: Duration, cutoff: Option<Cutoff>, what: String) -> Self {
        let handed = Arc::new(Handed {
            start: Instant::now(),
            at: AtomicU64::new(0),
        });
        let task = tokio::spawn(watch(handed.clone(), timeout, cutoff, what));
        Self { handed, task }
    }

    /// A chunk was handed to the connection.
    pub fn handed(&self) {
        let ms = self.handed.start.elapsed().as_millis() as u64 + 1;
        self.handed.at.store(ms, Ordering::Release);
    }

    /// The connection asked for the next chunk: the last one was taken.
    pub fn asked(&self) {
        self.handed.at.store(0, Ordering::Release);
    }
}

impl Drop for SendWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn watch(handed: Arc<Handed>, timeout: Duration, cutoff: Option<Cutoff>, what: String) {
    loop {
        let Some(since) = handed.waiting_since() else {
            sleep(timeout).await;
            continue;
        };
        let deadline = since + timeout;
        if Instant::now() < deadline {
            sleep_until(deadline).await;
            continue;
        }
        let timeout_secs = timeout.as_secs_f64();
        match cutoff {
            Some(cutoff) => {
                tracing::warn!(stream = %what, timeout_secs, "the client took nothing for the send timeout: connection closed");
                cutoff.cut();
            }
            None => {
                tracing::error!(stream = %what, timeout_secs, "the client took nothing for the send timeout, but its connection's socket is unknown: it stays open");
            }
        }
        return;
    }
}
