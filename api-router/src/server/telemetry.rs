//! Structured logs with `tracing`: `RUST_LOG` sets the filter (default `info`),
//! `SHARDGATE_LOG_FORMAT=json` switches to JSON lines.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls (e.g. from tests) do nothing.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("SHARDGATE_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
