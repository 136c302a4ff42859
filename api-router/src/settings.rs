//! The gateway's configuration: its own `[server]` section plus the cluster's.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use shard_manager::{config, ClusterSettings, ConfigError};

/// Everything the gateway reads at start-up.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    #[serde(flatten)]
    pub cluster: ClusterSettings,
}

/// HTTP-side limits and behaviour.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// `host:port`; port 0 picks a free port (the real one is logged).
    pub listen: String,
    pub max_body_bytes: usize,
    pub max_batch_records: usize,
    pub request_timeout_ms: u64,
    pub shutdown_timeout_secs: u64,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
}

impl ServerSettings {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

impl Settings {
    /// Loads the layered configuration (see `shard_manager::config`).
    pub fn load(overlay: Option<&Path>) -> Result<Self, ConfigError> {
        config::load(overlay)
    }
}
