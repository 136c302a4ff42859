//! OpenTelemetry traces: off unless an OTLP endpoint is named (`[tracing] endpoint`,
//! `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`). When on, every
//! request is an HTTP server span that continues the caller's W3C `traceparent` (only a
//! caller the gateway knows: [`server_span`]), its answer carries `traceresponse`, and
//! the spans leave in batches over OTLP from a thread of their own: a bounded queue,
//! never waited for, whose losses `/metrics` counts.
//!
//! Spans are plain `tracing` spans: the bridge (the `telemetry` crate's subscriber, with
//! the gateway's filter in [`exported`]) exports those of the workspace's crates at `INFO` and above,
//! nested under the request's server span, their fields as attributes (`otel.name`,
//! `otel.kind` and `otel.status_code` set the span's own). Events at `WARN` and above
//! inside them become span events. The request path's own spans and events
//! (`shard_manager::spans`: routing, connection waits, trips to servers, batches linked
//! with their requests through `follows_from`, two-phase commit, retries and bans) are
//! exported whatever their level, and never logged.
//!
//! The export itself, shared with the admin CLI, is the `telemetry` crate's: the
//! `[tracing]` section and the variables that turn it on ([`TracingSettings`]), the
//! tracer provider with its OTLP exporter and bounded batch ([`Exporting`]), and the
//! counts `/metrics` shows ([`SpanLedger`]). What is here is the gateway's own.
//!
//! ## Layout
//! - [`exported`]: what the gateway exports and what its log lines leave out.
//! - [`server_span`]: the middleware: the server span, context in, `traceresponse` out.
//! - [`unsampled`]: an unsampled request makes no span for its trace.

pub mod exported;
pub mod server_span;
pub mod unsampled;

pub use exported::Traced;
pub use telemetry::{Exporting, OtlpProtocol, SpanLedger, TracingSettings};
