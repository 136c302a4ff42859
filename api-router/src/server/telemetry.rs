//! Structured logs with `tracing`: `RUST_LOG` sets the filter (default `info`),
//! `SHARDGATE_LOG_FORMAT=json` switches to JSON lines. Colour only when standard output
//! is a terminal and `NO_COLOR` (<https://no-color.org>) is unset or empty, so a log
//! file or a pipe holds plain lines.
//!
//! With traces on ([`super::traces`]), a second layer hands spans to OpenTelemetry,
//! with a filter of its own so that `RUST_LOG` never decides what is exported: the
//! workspace's spans at `INFO` and above (the server span first) and, inside them,
//! events at `WARN` and above, and every span and event of the request path's own
//! target (`shard_manager::spans`: routing, connection waits, trips to servers,
//! batches, retries) and of the moves' (`control_plane::moves::spans`: each move's
//! run, its phases, the balancer's rounds). The log lines stay as they were, less
//! those spans and the server span (the request id's span, which carries `trace_id`
//! and `span_id`, stands for it). Under an unsampled request's server span nothing is
//! handed to OpenTelemetry ([`super::traces::unsampled`]), so the request path's spans
//! are not built for it. With traces off, both targets are off outright,
//! whatever `RUST_LOG` says: their spans are never built.

use std::ffi::OsString;
use std::io::IsTerminal;

use control_plane::moves::spans::TARGET as MOVES;
use opentelemetry_sdk::trace::SdkTracer;
use shard_manager::spans::TARGET as REQUEST_PATH;
use tracing::subscriber::Interest;
use tracing::{Level, Metadata};
use tracing_subscriber::filter::{dynamic_filter_fn, filter_fn, FilterExt};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use super::traces::server_span::TARGET as SERVER_SPAN;
use super::traces::unsampled;

/// The crates whose spans are exported.
const TRACED_CRATES: [&str; 4] = ["api_router", "shard_manager", "control_plane", "analytics"];

/// Installs the global subscriber once; later calls (e.g. from tests) do nothing.
/// `tracer`: the OpenTelemetry tracer spans are exported with, when traces are on.
pub fn init(tracer: Option<SdkTracer>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("SHARDGATE_LOG_FORMAT").is_ok_and(|v| v == "json");
    let ansi = colour(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR"),
    );
    let Some(tracer) = tracer else {
        // Traces off: the subscriber as it always was, the request path's and the
        // moves' spans off.
        let filter =
            [REQUEST_PATH, MOVES]
                .into_iter()
                .fold(filter, |filter, target| {
                    match format!("{target}=off").parse() {
                        Ok(off) => filter.add_directive(off),
                        Err(_) => filter,
                    }
                });
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(ansi);
        let _ = if json {
            builder.json().try_init()
        } else {
            builder.try_init()
        };
        return;
    };
    let logs = tracing_subscriber::fmt::layer().with_ansi(ansi);
    let logs = if json {
        logs.json().boxed()
    } else {
        logs.boxed()
    };
    let logs = logs.with_filter(filter.and(filter_fn(|m| !traces_only(m.target()))));
    // What is exported, less whatever an unsampled request makes: that is decided
    // per span, so the callsite's interest is "sometimes" for what `exported` lets
    // through and "never" for the rest (those are never asked again).
    let spans = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(
            dynamic_filter_fn(|meta, cx| exported(meta) && !unsampled::under_unsampled(meta, cx))
                .with_callsite_filter(|meta| {
                    if exported(meta) {
                        Interest::sometimes()
                    } else {
                        Interest::never()
                    }
                }),
        );
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init();
}

/// The targets that are for traces only, never for log lines: the server span, and
/// the request path's and the moves' spans and events.
fn traces_only(target: &str) -> bool {
    target == SERVER_SPAN || target == REQUEST_PATH || target == MOVES
}

/// Whether the OpenTelemetry layer sees a span or event: the server span, the request
/// path's and the moves', the workspace's spans at `INFO` and above but the request id's (the
/// server span stands for it), and events at `WARN` and above.
fn exported(meta: &Metadata<'_>) -> bool {
    let target = meta.target();
    if traces_only(target) {
        return true;
    }
    let ours = TRACED_CRATES.iter().any(|c| {
        target
            .strip_prefix(c)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    });
    if !ours {
        return false;
    }
    if meta.is_event() {
        *meta.level() <= Level::WARN
    } else {
        *meta.level() <= Level::INFO && target != super::request_id::SPAN_TARGET
    }
}

/// Whether log lines carry colour: written to a terminal, and `NO_COLOR` unset or empty.
fn colour(terminal: bool, no_color: Option<OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
        assert!(!colour(false, Some("".into())));
    }
}
