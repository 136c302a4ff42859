//! Builds a gateway: checks its settings, binds the listener, reads what the metadata
//! database holds ([`from_metadata`]), wires the parts that share it ([`wiring`]), the
//! HTTP server ([`http`]) and the background tasks ([`background`]), and runs it until
//! a signal or a handle stops it.

mod background;
mod from_metadata;
mod http;
mod wiring;

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use shard_manager::Cluster;

use self::background::Background;
use self::wiring::Wiring;
use crate::server::drain::{Shutdown, Signals};
use crate::server::settings::Settings;
use crate::server::traces::Traced;

/// A built, bound, not yet running gateway.
pub struct Application {
    port: u16,
    server: Server,
    cluster: Arc<Cluster>,
    /// Every background task; stopped when the application stops.
    background: Background,
    /// Drains, then stops the server (on a signal, or when a test asks).
    shutdown: Shutdown,
}

impl Application {
    /// Binds `settings.server.listen` (port 0 picks a free port), loads the shard map
    /// from the metadata database and builds the server. Opens no shard connection:
    /// the gateway starts whatever servers are down. When the metadata database does
    /// not answer (within the connect timeout) it starts with the config file's map,
    /// which the shards check like any other, and follows the database once it answers;
    /// until it has read the cluster's secret for record ids from it, records sent
    /// without an id under an idempotency key are refused (`control_plane::id_secret`).
    /// Must be called inside a Tokio runtime (it starts the background tasks).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_traced(settings, None).await
    }

    /// [`Application::build`] for a process whose spans are exported
    /// (`server::traces`): every request's trace is decided by `traces`' sampler (a
    /// sampled one gets its server span), its answer a `traceresponse`, and `/metrics`
    /// counts what became of the spans in `traces`' ledger.
    pub async fn build_traced(settings: Settings, traces: Option<Traced>) -> anyhow::Result<Self> {
        let edge = http::Edge::checked(&settings)?;
        settings.limits.validate().map_err(invalid)?;
        settings.analytics.validate().map_err(invalid)?;
        let listener = crate::server::listener::bind(&settings.server.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.server.listen))?;
        let local = listener.local_addr()?;
        let workers = match settings.server.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let loaded = from_metadata::load(&settings, workers, local).await?;
        let Wiring {
            shared,
            inputs,
            draining,
        } = Wiring::new(&settings, loaded, local, traces);
        let cluster = inputs.cluster.clone();
        let server = http::serve(&settings, listener, edge, workers, shared)?;
        let scheme = if settings.server.tls.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!(port = local.port(), listen = %settings.server.listen, scheme, "gateway listening");
        let background = Background::start(&settings, inputs);
        let drain = Duration::from_millis(settings.server.drain_ms);
        let shutdown = Shutdown::new(draining, drain, server.handle());
        Ok(Self {
            port: local.port(),
            server,
            cluster,
            background,
            shutdown,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster this gateway serves (tests ask it whether replicas take reads yet).
    pub fn cluster(&self) -> Arc<Cluster> {
        self.cluster.clone()
    }

    /// Serves until SIGTERM/Ctrl-C (or a handle stops it). A signal drains first
    /// (server::drain), then stops accepting; in-flight requests finish within the
    /// shutdown timeout; then the pools close.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        // Listened to before the server is first polled (that is when it starts to
        // accept): a signal once it answers always drains, never kills outright.
        let signals = match Signals::listen() {
            Ok(listening) => Some(tokio::spawn(self.shutdown.clone().on_signal(listening))),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM: it will not drain");
                None
            }
        };
        let result = self.server.await;
        if let Some(signals) = signals {
            signals.abort();
        }
        self.background.stop();
        self.cluster.close();
        tracing::info!("gateway stopped");
        result
    }

    /// A handle that can stop the server at once (tests use it for graceful shutdown).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Stops the server the way a signal does: drain, then stop.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }
}

/// A configuration section that cannot work: the start is refused, naming it.
fn invalid(e: impl std::fmt::Display) -> anyhow::Error {
    shard_manager::ConfigError::Invalid(e.to_string()).into()
}
