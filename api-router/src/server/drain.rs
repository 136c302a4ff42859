//! Stopping without dropping a request: on SIGTERM or Ctrl-C the gateway first says it
//! is draining (`GET /api/health/ready` answers 503) while it goes on serving, for
//! `server.drain_ms`, long enough for a load balancer's health checks to take it out of
//! rotation; only then does it stop accepting and let in-flight requests finish within
//! `server.shutdown_timeout_secs`. Stopping at once instead would close keep-alive
//! connections the load balancer may be about to send a request on. A second signal
//! during the drain stops at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;

/// Whether this gateway is draining (shared with the readiness handler).
#[derive(Debug, Default)]
pub struct Draining(AtomicBool);

impl Draining {
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Stops a running gateway the drained way.
#[derive(Clone)]
pub struct Shutdown {
    draining: Arc<Draining>,
    drain_for: Duration,
    server: ServerHandle,
}

impl Shutdown {
    pub fn new(draining: Arc<Draining>, drain_for: Duration, server: ServerHandle) -> Self {
        Self {
            draining,
            drain_for,
            server,
        }
    }

    /// Answers not-ready for the drain time while serving, then stops gracefully.
    /// Returns once the server has stopped.
    pub async fn drain_and_stop(&self) {
        self.draining.start();
        tracing::info!(
            drain_ms = self.drain_for.as_millis() as u64,
            "draining: /api/health/ready answers 503 while requests are still served"
        );
        tokio::time::sleep(self.drain_for).await;
        tracing::info!("drained: no longer accepting; finishing the requests in flight");
        self.server.stop(true).await;
    }

    /// Waits for SIGTERM or Ctrl-C, drains and stops; a second signal during the drain
    /// stops at once (requests in flight still get the shutdown timeout).
    pub async fn on_signal(self, mut signals: Signals) {
        if signals.next().await.is_err() {
            return;
        }
        let second = async {
            if signals.next().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = self.drain_and_stop() => {}
            () = second => {
                tracing::info!("second signal: stopping without waiting for the drain");
                self.server.stop(true).await;
            }
        }
    }
}

/// SIGTERM and SIGINT (Ctrl-C), listened to from the moment this is made. Made before the
/// server is first polled (when it starts to accept), so a signal that arrives once the
/// gateway answers is always a drain, never the default action (an exit that drops what
/// is in flight).
pub struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    /// Starts listening; an error when signals cannot be listened to.
    pub fn listen() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                term: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// The next SIGTERM or SIGINT; an error when no more can arrive.
    async fn next(&mut self) -> std::io::Result<()> {
        #[cfg(unix)]
        {
            let closed = || std::io::Error::other("signal stream closed");
            tokio::select! {
                got = self.term.recv() => got.ok_or_else(closed),
                got = self.interrupt.recv() => got.ok_or_else(closed),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await
        }
    }
}
