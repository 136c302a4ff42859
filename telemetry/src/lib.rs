//! OpenTelemetry traces over OTLP, as Shardgate's processes export them: the gateway
//! (`api-router`) and the admin CLI (`shard-admin`, whose moves are traces). Both read
//! the same `[tracing]` section and the same standard `OTEL_*` variables, and export
//! only when one of them names an OTLP endpoint; what each process turns into spans (the
//! gateway's server span and request path, the CLI's moves) stays in that process's
//! crate. This crate knows no workspace crate: only `tracing` and OpenTelemetry's.
//!
//! Spans leave in batches from the SDK's thread of their own, behind a bounded queue that
//! is never waited for; what became of every span is counted (the gateway's `/metrics`
//! shows it). [`Exporting::shutdown`] sends what is left, within a bound, when the
//! process stops.
//!
//! ## Layout
//! - [`settings`]: the `[tracing]` section, the standard variables, and whether export is
//!   on.
//! - [`export`]: the tracer provider: resource, sampler, OTLP exporter, bounded batch,
//!   and its shutdown.
//! - [`sampler`]: the configured sampler, except that a new trace linked to a sampled
//!   span of this process (a batch that carried a sampled request) is sampled too.
//! - [`ledger`]: what became of every ended span (exported, dropped on a full queue,
//!   lost with a failed export), and the processor and exporter wrappers that count it.

pub mod export;
pub mod ledger;
pub mod sampler;
pub mod settings;

pub use export::{ExportError, Exporting};
pub use ledger::{SpanCounts, SpanLedger};
pub use settings::{OtlpProtocol, TracingSettings};
