//! Logs and OpenTelemetry traces over OTLP, as Shardgate's processes write and export
//! them: the gateway (`api-router`) and the admin CLI (`shard-admin`, whose moves are
//! traces). Both install the same subscriber ([`install`]: log lines by one rule, and the
//! bridge from `tracing` spans to OpenTelemetry), read the same `[tracing]` section and
//! the same standard `OTEL_*` variables, and export only when one of them names an OTLP
//! endpoint; what each process turns into spans and exports (the gateway's server span
//! and request path, the CLI's moves) stays in that process's crate. This crate knows no
//! workspace crate: only `tracing` and OpenTelemetry's.
//!
//! Spans leave in batches from the SDK's thread of their own, behind a bounded queue that
//! is never waited for; what became of every span is counted (the gateway's `/metrics`
//! shows it). [`Exporting::shutdown`] sends what is left, within a bound, when the
//! process stops.
//!
//! ## Layout
//! - [`subscriber`]: the one `tracing` subscriber: log lines (filter, format, colour) and
//!   the bridge to OpenTelemetry with the process's own export filter.
//! - [`settings`]: the `[tracing]` section, the standard variables, and whether export is
//!   on.
//! - [`export`]: the tracer provider: resource, sampler, OTLP exporter, bounded batch,
//!   and its shutdown.
//! - [`root`]: a request's sampling decision, made before any span of it exists, so
//!   that an unsampled request makes none.
//! - [`sampler`]: the configured sampler, except that a new trace linked to a sampled
//!   span of this process (a batch that carried a sampled request) is sampled too.
//! - `sampled_at_root`: the mark of a root decided sampled, which `root` sets and
//!   `sampler` reads.
//! - [`ledger`]: what became of every ended span (exported, dropped on a full queue,
//!   lost with a failed export), and the processor and exporter wrappers that count it.

pub mod export;
pub mod ledger;
pub mod root;
mod sampled_at_root;
pub mod sampler;
pub mod settings;
pub mod subscriber;

pub use export::{ExportError, Exporting};
pub use ledger::{SpanCounts, SpanLedger};
pub use root::{Root, RootSampler};
pub use settings::{OtlpProtocol, TracingSettings};
pub use subscriber::{colour, install, stack, Export, Logs, Refusal, Stream};
/// The bridge's hold on a `tracing` span's OpenTelemetry side: its parent, links and
/// context (the gateway's server span continues or links its caller's trace with it).
pub use tracing_opentelemetry::OpenTelemetrySpanExt;
