//! The CLI's log lines, and its moves as OpenTelemetry traces. A move started here
//! (`move-slots`, `moves resume`, an abort, `rebalance --apply`, `add-shard`,
//! `remove-shard`) runs in this process, so its spans (`control_plane::moves::spans`:
//! each run a `move slot` root with its phases) are exported from here, as the gateway
//! exports its own balancer's: with the same `[tracing]` section and `OTEL_*`
//! variables (the `telemetry` crate), and only when one of them names an OTLP endpoint.
//!
//! - Log lines go to standard error as ever (`RUST_LOG`, default `info`); the moves'
//!   target never reaches them.
//! - With export on, a second layer hands the moves' target (spans and events, whatever
//!   their level) to OpenTelemetry, every move recorded (`OTEL_TRACES_SAMPLER` may say
//!   otherwise), as service `shard-admin` unless `OTEL_SERVICE_NAME` or
//!   `OTEL_RESOURCE_ATTRIBUTES` names another. With export off, the moves' target is off
//!   outright: its spans are never built.
//! - [`Traces`], dropped when the command is over, sends the spans still queued within
//!   [`FLUSH`]: a collector that is down costs at most that, and never the command's
//!   result or exit code; one warning line says how many spans were lost. A `[tracing]`
//!   section or variable that cannot work is one warning line too, and the command runs
//!   untraced.

use std::time::Duration;

use control_plane::moves::spans::TARGET as MOVES;
use telemetry::{Export, Exporting, Logs, Stream, TracingSettings};

/// How long a finished command waits, at most, for its last spans to be sent.
pub const FLUSH: Duration = Duration::from_secs(5);

/// The spans' `service.name` unless the standard variables name one.
pub const SERVICE_NAME: &str = "shard-admin";

/// The export, while a command runs; dropped, it sends what is left (within [`FLUSH`]).
pub struct Traces {
    exporting: Option<Exporting>,
}

impl Drop for Traces {
    /// Sends the spans still queued, then says so if any of the command's were lost
    /// (a user following the move in a tracing UI would otherwise find nothing, unwarned).
    fn drop(&mut self) {
        let Some(exporting) = self.exporting.take() else {
            return;
        };
        exporting.shutdown(FLUSH);
        let counts = exporting.ledger.counts();
        let lost = counts.dropped_export_failed + counts.dropped_queue_full;
        if lost > 0 {
            tracing::warn!(
                lost,
                exported = counts.exported,
                "traces: spans of this command not exported (the collector unreachable or refusing, or the queue full)"
            );
        }
    }
}

/// Installs the CLI's subscriber, exporting the moves' spans when `settings` (the
/// configuration's `[tracing]` section, or why it could not be read) or the
/// environment name an OTLP endpoint.
pub fn init(settings: anyhow::Result<TracingSettings>) -> Traces {
    let started = settings.and_then(|settings| {
        let settings = for_the_cli(settings);
        Ok(Exporting::start(&settings, |name| {
            std::env::var(name).ok()
        })?)
    });
    let (exporting, refused) = match started {
        Ok(exporting) => (exporting, None),
        Err(error) => (None, Some(error)),
    };
    subscriber(exporting.as_ref());
    if let Some(error) = refused {
        tracing::warn!(error = format!("{error:#}"), "traces off");
    }
    Traces { exporting }
}

/// The gateway's settings as the CLI uses them: its own service name, and every move
/// recorded (a move is rare, and the trace is what a user follows it by).
fn for_the_cli(settings: TracingSettings) -> TracingSettings {
    TracingSettings {
        service_name: SERVICE_NAME.into(),
        sample_ratio: 1.0,
        ..settings
    }
}

/// The CLI's log lines: on standard error (standard output is for results only: a new
/// key is printed there alone), without the moves' target, which is for traces only.
const LOGS: Logs = Logs {
    stream: Stream::Stderr,
    traces_only: &[MOVES],
};

/// Log lines on standard error; with `exporting`, the moves' target exported through
/// it, whatever the level.
fn subscriber(exporting: Option<&Exporting>) {
    telemetry::install(
        LOGS,
        exporting.map(|exporting| Export {
            tracer: exporting.tracer.clone(),
            exported: |meta| meta.target() == MOVES,
            refused: None,
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_names_itself_and_records_every_move_whatever_the_gateways_ratio() {
        let gateway = TracingSettings {
            endpoint: "http://collector:4318".into(),
            sample_ratio: 0.1,
            max_queue_spans: 64,
            ..TracingSettings::default()
        };
        let cli = for_the_cli(gateway.clone());
        assert_eq!(cli.service_name, "shard-admin");
        assert_eq!(cli.sample_ratio, 1.0);
        assert_eq!(cli.endpoint, gateway.endpoint);
        assert_eq!(cli.max_queue_spans, 64);
    }
}
