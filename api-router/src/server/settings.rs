//! The gateway's configuration: its own `[server]`, `[analytics]`, `[auth]`,
//! `[limits]` and `[tracing]` sections plus the cluster's.

use std::path::Path;
use std::time::Duration;

use analytics::AnalyticsConfig;
use control_plane::moves::auto_balance::BalancerSettings;
use serde::Deserialize;
use shard_manager::{config, ClusterSettings, ConfigError};

use super::tls::TlsSettings;
use super::traces::TracingSettings;
use crate::edge::cors::CorsSettings;

/// Everything the gateway reads at start-up.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    /// The analytics recorder's limits (`[analytics]`); every one bounds memory.
    #[serde(default)]
    pub analytics: AnalyticsConfig,
    /// API keys and protected mode (`[auth]`).
    #[serde(default)]
    pub auth: AuthSettings,
    /// Each API key's default rate and per-shard concurrency (`[limits]`).
    #[serde(default)]
    pub limits: LimitsSettings,
    /// The automatic balancer by load (`[balancer]`), off by default.
    #[serde(default)]
    pub balancer: BalancerSettings,
    /// OpenTelemetry traces (`[tracing]`), off unless an OTLP endpoint is named.
    #[serde(default)]
    pub tracing: TracingSettings,
    #[serde(flatten)]
    pub cluster: ClusterSettings,
}

/// HTTP-side limits and behaviour.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// `host:port`; port 0 picks a free port (the real one is logged).
    pub listen: String,
    /// Largest single-write body, bytes; larger gets 413.
    pub max_body_bytes: usize,
    /// Largest bulk-write body, bytes; larger gets 413.
    #[serde(default = "default_bulk_body")]
    pub max_bulk_body_bytes: usize,
    /// Most records one bulk write may carry (counted while parsing); more gets 413.
    pub max_batch_records: usize,
    /// Operations one `POST /api/transaction` may carry.
    #[serde(default = "default_max_transaction_operations")]
    pub max_transaction_operations: usize,
    /// How long a prepared part of a transaction on several shards may wait for its
    /// coordinator before a recovery decides for it (commit if logged, else roll back).
    #[serde(default = "default_txn_in_doubt_ms")]
    pub txn_in_doubt_ms: u64,
    /// How often every gateway's recovery looks for prepared parts.
    #[serde(default = "default_txn_recovery_ms")]
    pub txn_recovery_ms: u64,
    /// Deepest JSON nesting accepted in a body (at most 120); deeper gets 413.
    #[serde(default = "default_depth")]
    pub max_json_depth: usize,
    /// Most JSON values (scalars, arrays, objects) in a single-write body.
    #[serde(default = "default_values")]
    pub max_json_values: usize,
    /// Most JSON values in a bulk-write body.
    #[serde(default = "default_bulk_values")]
    pub max_bulk_json_values: usize,
    /// Most bytes of records one list page holds (a fan-out's shards share it); a page
    /// stops early with a `next` cursor for the rest. Its first record always fits,
    /// whatever its size. A `read-many` answer is held to it too, each record counted
    /// as often as it is asked (past it: 413 `read-budget`).
    #[serde(default = "default_read_bytes")]
    pub max_read_bytes: usize,
    /// Exports streaming at once on this gateway (each may hold a page per shard and a
    /// connection); one more gets 503 `exports-busy` with `Retry-After`.
    #[serde(default = "default_max_exports")]
    pub max_exports: usize,
    /// An export whose client takes nothing for this long (a chunk, at most a page, not
    /// taken) is stopped and its connection closed, freeing its slot and memory.
    #[serde(default = "default_export_send_timeout")]
    pub export_send_timeout_secs: u64,
    /// A body must arrive within this many ms of its headers; a slower one gets 408.
    #[serde(default = "default_body_timeout")]
    pub body_timeout_ms: u64,
    /// Upper bound on any request's work, ms; past it the answer is 504. A transaction
    /// on several shards answers where it stands and its coordinator finishes alone.
    pub request_timeout_ms: u64,
    /// On SIGTERM/Ctrl-C, how long requests in flight may take to finish, seconds.
    pub shutdown_timeout_secs: u64,
    /// On SIGTERM/Ctrl-C, how long the gateway answers not-ready on
    /// `/api/health/ready` while still serving, before it stops accepting: time for a
    /// load balancer's checks to take it out of rotation. 0 stops at once;
    /// `GATEWAYS=N ./setup.sh run` sets 3000.
    #[serde(default)]
    pub drain_ms: u64,
    /// How long the answer to a write sent with an `Idempotency-Key` is kept: a retry
    /// within it gets that answer instead of a second write.
    #[serde(default = "default_idempotency_ttl")]
    pub idempotency_ttl_secs: u32,
    /// How often expired idempotency entries are deleted from the shards.
    #[serde(default = "default_idempotency_sweep")]
    pub idempotency_sweep_secs: u64,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// `Host` names (without port) the gateway answers to; anything else gets 421, so a
    /// web page on another name cannot reach a local gateway through DNS rebinding.
    /// `"*"` accepts any (behind a proxy that checks `Host` itself). The listen
    /// address's own host is always accepted.
    #[serde(default = "default_allowed_hosts")]
    pub allowed_hosts: Vec<String>,
    /// Cross-origin requests from browsers (`[server.cors]`); off by default.
    #[serde(default)]
    pub cors: CorsSettings,
    /// HTTPS with these PEM files (`[server.tls]`); plain HTTP without the section.
    #[serde(default)]
    pub tls: Option<TlsSettings>,
    /// Load balancers whose PROXY protocol header (v1 or v2) is believed, as addresses
    /// or CIDR blocks (`["127.0.0.1/32"]` behind `GATEWAYS=N ./setup.sh run`'s HAProxy).
    /// Their connections' clients are the ones they declare, for protected mode, the
    /// audit log and every request. Empty (the default): no peer may declare another
    /// client; a PROXY line is not even read (it is not HTTP: 400), so a client cannot
    /// pass for loopback. Not with `[server.tls]`: terminate TLS at the proxy.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

/// Access control. The keys themselves live in the metadata database
/// (`shard-admin keys ...`); this section only says what to do without any.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// With no API key: serve loopback clients only, and refuse to start on a
    /// non-loopback address. `false` is the explicit opt-out (everyone is served
    /// without a key until one exists).
    #[serde(default = "default_true")]
    pub protected_mode: bool,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            protected_mode: true,
        }
    }
}

impl AuthSettings {
    /// The `[auth]` keys and their values, for the configuration reference
    /// (docs/src/configuration.md): a test compares them with the fields.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({ "protected_mode": self.protected_mode })
    }
}

/// Fair limits per API key: what each key gets unless it has limits of its own
/// (`shard-admin keys limit`). 0 is no limit; every one is off by default, since a
/// gateway cannot know what its clients need. Anonymous callers (no key exists) are
/// never limited. Each gateway enforces them on its own.
#[derive(Debug, Clone, Deserialize)]
pub struct LimitsSettings {
    /// Requests per second per key, sustained (GCRA).
    #[serde(default)]
    pub rate_per_sec: u32,
    /// Requests a key may send at once above the rate; 0 is one second's worth.
    #[serde(default)]
    pub burst: u32,
    /// Queries of one key running at once on one shard.
    #[serde(default)]
    pub concurrency_per_shard: u32,
    /// Over the concurrency cap, how long a request waits for a query of the key to end
    /// before it gets 429.
    #[serde(default = "default_concurrency_wait")]
    pub concurrency_wait_ms: u64,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        Self {
            rate_per_sec: 0,
            burst: 0,
            concurrency_per_shard: 0,
            concurrency_wait_ms: default_concurrency_wait(),
        }
    }
}

/// Longest `limits.concurrency_wait_ms`: a 429 is meant to come quickly.
pub const MAX_CONCURRENCY_WAIT_MS: u64 = 10_000;

impl LimitsSettings {
    /// Refuses values out of range, naming the field and the range.
    pub fn validate(&self) -> Result<(), String> {
        use control_plane::keys::limits::{MAX_CONCURRENCY, MAX_RATE};
        let checks = [
            (
                "rate_per_sec",
                u64::from(self.rate_per_sec),
                u64::from(MAX_RATE),
            ),
            ("burst", u64::from(self.burst), u64::from(MAX_RATE)),
            (
                "concurrency_per_shard",
                u64::from(self.concurrency_per_shard),
                u64::from(MAX_CONCURRENCY),
            ),
            (
                "concurrency_wait_ms",
                self.concurrency_wait_ms,
                MAX_CONCURRENCY_WAIT_MS,
            ),
        ];
        match checks.into_iter().find(|(_, value, max)| value > max) {
            Some((field, value, max)) => Err(format!("limits.{field} is {value}; use 0 to {max}")),
            None => Ok(()),
        }
    }

    /// The `[limits]` keys and their values, for the configuration reference
    /// (docs/src/configuration.md): a test compares them with the fields.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "rate_per_sec": self.rate_per_sec,
            "burst": self.burst,
            "concurrency_per_shard": self.concurrency_per_shard,
            "concurrency_wait_ms": self.concurrency_wait_ms,
        })
    }
}

fn default_concurrency_wait() -> u64 {
    50
}

fn default_true() -> bool {
    true
}

fn default_bulk_body() -> usize {
    16 << 20
}
fn default_read_bytes() -> usize {
    8 << 20
}
fn default_max_exports() -> usize {
    4
}
fn default_export_send_timeout() -> u64 {
    30
}
fn default_idempotency_ttl() -> u32 {
    86_400
}
fn default_max_transaction_operations() -> usize {
    100
}
fn default_txn_in_doubt_ms() -> u64 {
    10_000
}
fn default_txn_recovery_ms() -> u64 {
    5000
}
fn default_idempotency_sweep() -> u64 {
    60
}
fn default_depth() -> usize {
    64
}
fn default_values() -> usize {
    20_000
}
fn default_bulk_values() -> usize {
    100_000
}
fn default_body_timeout() -> u64 {
    5_000
}

fn default_allowed_hosts() -> Vec<String> {
    ["localhost", "127.0.0.1", "[::1]"]
        .map(String::from)
        .to_vec()
}

impl ServerSettings {
    /// Refuses values that cannot work, naming the key and what to write instead.
    pub fn validate(&self) -> Result<(), String> {
        if self.idempotency_ttl_secs == 0 {
            return Err("server.idempotency_ttl_secs is 0; use 1 or more (86400 keeps answers a day): with 0 no answer is kept, so a retried write would happen twice".into());
        }
        if self.max_transaction_operations == 0 {
            return Err("server.max_transaction_operations is 0; use 1 or more (100 by default): with 0 every transaction would be refused".into());
        }
        if self.txn_recovery_ms == 0 || self.txn_in_doubt_ms == 0 {
            return Err("server.txn_recovery_ms and server.txn_in_doubt_ms must be 1 or more (5000 and 10000 by default)".into());
        }
        if self.max_exports == 0 {
            return Err("server.max_exports is 0; use 1 or more (4 by default): with 0 every export would be refused".into());
        }
        if self.export_send_timeout_secs == 0 {
            return Err("server.export_send_timeout_secs is 0; use 1 or more (30 by default): with 0 every export would be cut off at once".into());
        }
        if self.idempotency_sweep_secs == 0 {
            return Err("server.idempotency_sweep_secs is 0; use 1 or more (60 sweeps once a minute): with 0 the sweep of expired idempotency answers would never pause".into());
        }
        let trusted = super::proxy::TrustedProxies::parse(&self.trusted_proxies)?;
        if !trusted.is_empty() && self.tls.is_some() {
            return Err("server.trusted_proxies with [server.tls]: the PROXY protocol is read on plain connections only; terminate TLS at the proxy (or remove trusted_proxies)".into());
        }
        Ok(())
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }

    pub fn export_send_timeout(&self) -> Duration {
        Duration::from_secs(self.export_send_timeout_secs)
    }

    /// The `[server]` keys and their values, for the configuration reference
    /// (docs/src/configuration.md): a test compares them with the fields.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "listen": self.listen,
            "max_body_bytes": self.max_body_bytes,
            "max_bulk_body_bytes": self.max_bulk_body_bytes,
            "max_batch_records": self.max_batch_records,
            "max_transaction_operations": self.max_transaction_operations,
            "txn_in_doubt_ms": self.txn_in_doubt_ms,
            "txn_recovery_ms": self.txn_recovery_ms,
            "max_json_depth": self.max_json_depth,
            "max_json_values": self.max_json_values,
            "max_bulk_json_values": self.max_bulk_json_values,
            "max_read_bytes": self.max_read_bytes,
            "max_exports": self.max_exports,
            "export_send_timeout_secs": self.export_send_timeout_secs,
            "body_timeout_ms": self.body_timeout_ms,
            "request_timeout_ms": self.request_timeout_ms,
            "shutdown_timeout_secs": self.shutdown_timeout_secs,
            "drain_ms": self.drain_ms,
            "idempotency_ttl_secs": self.idempotency_ttl_secs,
            "idempotency_sweep_secs": self.idempotency_sweep_secs,
            "workers": self.workers,
            "allowed_hosts": self.allowed_hosts,
            "trusted_proxies": self.trusted_proxies,
        })
    }

    /// Whether a request's `Host` (port and case ignored) is one the gateway serves.
    pub fn allows_host(&self, host: &str) -> bool {
        let name = host_name(host);
        let listen = host_name(&self.listen);
        self.allowed_hosts
            .iter()
            .any(|h| h == "*" || h.eq_ignore_ascii_case(name))
            || (!listen.is_empty() && listen.eq_ignore_ascii_case(name))
    }
}

/// `host[:port]` or `[v6][:port]` without the port.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

impl Settings {
    /// Loads the layered configuration (see `shard_manager::config`).
    pub fn load(overlay: Option<&Path>) -> Result<Self, ConfigError> {
        config::load(overlay)
    }
}

#[cfg(test)]
mod tests {
    //! The gateway's layered settings and their checks.

    use super::*;

    fn server(allowed: &[&str], listen: &str) -> ServerSettings {
        ServerSettings {
            listen: listen.into(),
            max_body_bytes: 1,
            max_bulk_body_bytes: 1,
            max_batch_records: 1,
            max_transaction_operations: 1,
            txn_in_doubt_ms: 1,
            txn_recovery_ms: 1,
            max_json_depth: 1,
            max_json_values: 1,
            max_bulk_json_values: 1,
            max_read_bytes: 1,
            max_exports: 1,
            export_send_timeout_secs: 1,
            body_timeout_ms: 1,
            request_timeout_ms: 1,
            shutdown_timeout_secs: 1,
            drain_ms: 0,
            idempotency_ttl_secs: 60,
            idempotency_sweep_secs: 60,
            workers: 1,
            allowed_hosts: allowed.iter().map(|h| h.to_string()).collect(),
            cors: CorsSettings::default(),
            tls: None,
            trusted_proxies: Vec::new(),
        }
    }

    #[test]
    fn limits_out_of_range_are_named() {
        assert_eq!(LimitsSettings::default().validate(), Ok(()));
        assert_eq!(LimitsSettings::default().concurrency_wait_ms, 50);
        let too_fast = LimitsSettings {
            rate_per_sec: 1_000_001,
            ..LimitsSettings::default()
        };
        assert_eq!(
            too_fast.validate(),
            Err("limits.rate_per_sec is 1000001; use 0 to 1000000".into())
        );
        let slow = LimitsSettings {
            concurrency_wait_ms: 60_000,
            ..LimitsSettings::default()
        };
        assert!(slow
            .validate()
            .unwrap_err()
            .starts_with("limits.concurrency_wait_ms"));
    }

    #[test]
    fn zero_idempotency_ttl_or_sweep_is_refused_with_what_to_write() {
        assert_eq!(server(&[], "127.0.0.1:0").validate(), Ok(()));
        let keep_nothing = ServerSettings {
            idempotency_ttl_secs: 0,
            ..server(&[], "127.0.0.1:0")
        };
        assert_eq!(
        keep_nothing.validate(),
        Err("server.idempotency_ttl_secs is 0; use 1 or more (86400 keeps answers a day): with 0 no answer is kept, so a retried write would happen twice".into())
    );
        let spin = ServerSettings {
            idempotency_sweep_secs: 0,
            ..server(&[], "127.0.0.1:0")
        };
        assert_eq!(
        spin.validate(),
        Err("server.idempotency_sweep_secs is 0; use 1 or more (60 sweeps once a minute): with 0 the sweep of expired idempotency answers would never pause".into())
    );
        // Read from a file as from the environment: the start-up check sees the zero.
        let loaded = load_with("[server]\nidempotency_sweep_secs = 0\n").unwrap();
        assert!(loaded
            .server
            .validate()
            .unwrap_err()
            .starts_with("server.idempotency_sweep_secs is 0; use 1 or more"));
    }

    #[test]
    fn hosts_are_matched_by_name_without_port() {
        let s = server(&["localhost", "127.0.0.1", "[::1]"], "127.0.0.1:8080");
        assert!(s.allows_host("localhost:8080"));
        assert!(s.allows_host("LOCALHOST"));
        assert!(s.allows_host("127.0.0.1:1"));
        assert!(s.allows_host("[::1]:8080"));
        assert!(!s.allows_host("evil.example:8080"));
        assert!(!s.allows_host("localhost.evil.example"));
        let s = server(&[], "10.0.0.5:8080");
        assert!(s.allows_host("10.0.0.5:8080"), "the listen address itself");
        assert!(server(&["*"], "0.0.0.0:80").allows_host("anything"));
    }

    fn load_with(overlay: &str) -> Result<Settings, ConfigError> {
        let dir = std::env::temp_dir().join(format!("sg-set-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("overlay.toml");
        std::fs::write(&file, overlay).unwrap();
        let loaded = Settings::load(Some(&file));
        let _ = std::fs::remove_dir_all(&dir);
        loaded
    }

    #[test]
    fn cors_and_tls_are_off_unless_configured_and_read_when_they_are() {
        let plain = load_with("").unwrap();
        assert!(!plain.server.cors.enabled());
        assert_eq!(plain.server.cors, CorsSettings::default());
        assert!(plain.server.tls.is_none());

        let edge = load_with(
            "[server.cors]\nallowed_origins = [\"https://app.example.com\"]\nmax_age_secs = 60\n\
         [server.tls]\ncert_path = \"/etc/c.pem\"\nkey_path = \"/etc/k.pem\"\n",
        )
        .unwrap();
        let cors = &edge.server.cors;
        assert_eq!(cors.allowed_origins, ["https://app.example.com"]);
        assert_eq!(cors.max_age_secs, 60);
        assert_eq!(
            cors.allowed_methods,
            CorsSettings::default().allowed_methods
        );
        let tls = edge.server.tls.unwrap();
        assert_eq!(tls.cert_path, Path::new("/etc/c.pem"));
        assert_eq!(tls.key_path, Path::new("/etc/k.pem"));
        assert_eq!(tls.hsts().as_deref(), Some("max-age=31536000"));

        let typo = load_with("[server.tls]\ncert = \"c.pem\"\nkey_path = \"k.pem\"\n");
        assert!(
            typo.unwrap_err().to_string().contains("cert"),
            "unknown keys are refused"
        );
    }

    #[test]
    fn export_limits_default_to_four_at_once_and_thirty_seconds_and_refuse_zero() {
        let loaded = load_with("").unwrap();
        assert_eq!(loaded.server.max_exports, 4);
        assert_eq!(loaded.server.export_send_timeout_secs, 30);
        let loaded = load_with("[server]\nmax_exports = 0\n").unwrap();
        assert!(loaded
            .server
            .validate()
            .unwrap_err()
            .starts_with("server.max_exports is 0; use 1 or more"));
        let never = ServerSettings {
            export_send_timeout_secs: 0,
            ..server(&[], "127.0.0.1:0")
        };
        assert!(never
            .validate()
            .unwrap_err()
            .starts_with("server.export_send_timeout_secs is 0; use 1 or more"));
    }
}
