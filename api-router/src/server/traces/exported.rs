//! What the gateway hands OpenTelemetry, and keeps out of its log lines, through the one
//! subscriber every Shardgate process installs (`telemetry::install`: `RUST_LOG`,
//! `SHARDGATE_LOG_FORMAT=json`, colour only on a terminal without `NO_COLOR`). Log lines
//! go to standard output.
//!
//! With traces on, the exported spans and events are: the workspace's spans at `INFO`
//! and above (the server span first) and, inside them, events at `WARN` and above, and
//! every span and event of the request path's own target (`shard_manager::spans`:
//! routing, connection waits, trips to servers, batches, retries) and of the moves'
//! (`control_plane::moves::spans`: each move's run, its phases, the balancer's rounds),
//! so that `RUST_LOG` never decides what is exported. Those targets and the server span
//! are for traces only: the log lines never show them (the request id's span, which
//! carries `trace_id` and `span_id`, stands for the server span), and with traces off
//! they are off outright, whatever `RUST_LOG` says: their spans are never built. In an
//! unsampled request's work nothing is handed to OpenTelemetry ([`super::unsampled`]),
//! so the request path's spans are not built for it.

use control_plane::moves::spans::TARGET as MOVES;
use shard_manager::spans::TARGET as REQUEST_PATH;
use std::sync::Arc;

use opentelemetry_sdk::trace::SdkTracer;
use telemetry::{Export, Exporting, Logs, RootSampler, SpanLedger, Stream};
use tracing::{Level, Metadata};

use super::server_span::TARGET as SERVER_SPAN;
use super::unsampled;
use crate::server::request_id;

/// The crates whose spans are exported.
const TRACED_CRATES: [&str; 4] = ["api_router", "shard_manager", "control_plane", "analytics"];

/// The gateway's log lines: on standard output, without the targets for traces only.
pub const LOGS: Logs = Logs {
    stream: Stream::Stdout,
    traces_only: &[SERVER_SPAN, REQUEST_PATH, MOVES],
};

/// What the gateway's parts hold of an export that is on.
#[derive(Debug, Clone)]
pub struct Traced {
    /// What became of the spans, for `/metrics`.
    pub ledger: Arc<SpanLedger>,
    /// The sampler each request's trace is decided by before its server span exists.
    pub sampler: RootSampler,
}

impl Traced {
    pub fn of(exporting: &Exporting) -> Self {
        Self {
            ledger: exporting.ledger.clone(),
            sampler: exporting.sampler.clone(),
        }
    }
}

/// What the gateway exports through `exporting`: [`exported`], less whatever an
/// unsampled request makes.
pub fn export(exporting: &Exporting) -> Export {
    export_with(exporting.tracer.clone())
}

/// What the gateway exports through `tracer`.
pub fn export_with(tracer: SdkTracer) -> Export {
    Export {
        tracer,
        exported,
        refused: Some(Box::new(unsampled::under_unsampled)),
    }
}

/// Whether the OpenTelemetry layer sees a span or event: the server span, the request
/// path's and the moves', the workspace's spans at `INFO` and above but the request id's
/// (the server span stands for it), and events at `WARN` and above.
fn exported(meta: &Metadata<'_>) -> bool {
    let target = meta.target();
    if LOGS.traces_only.contains(&target) {
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
        *meta.level() <= Level::INFO && target != request_id::SPAN_TARGET
    }
}
