//! The one `tracing` subscriber of Shardgate's processes (the gateway and the admin
//! CLI): log lines for people and for pipes and, while traces are exported, the bridge
//! (`tracing-opentelemetry`) that hands spans to OpenTelemetry. Each process says where
//! its lines go and which targets are for traces only ([`Logs`]), and what it exports
//! ([`Export`]); the rules are the same for both:
//!
//! - Log lines: `RUST_LOG` sets the filter (default `info`); `SHARDGATE_LOG_FORMAT=json`
//!   writes JSON lines. Colour only when the lines' stream is a terminal and `NO_COLOR`
//!   (<https://no-color.org>) is unset or empty ([`colour`]), so a log file or a pipe
//!   holds plain lines.
//! - A target for traces only never reaches the log lines, and with export off it is off
//!   outright, whatever `RUST_LOG` says: its spans are never built.
//! - With export on, a second layer hands OpenTelemetry what [`Export::exported`] lets
//!   through, with a filter of its own, so that `RUST_LOG` never decides what is
//!   exported; [`Export::refused`], when given, refuses more span by span (the gateway:
//!   whatever an unsampled request makes).

use std::io::IsTerminal;

use opentelemetry_sdk::trace::SdkTracer;
use tracing::subscriber::Interest;
use tracing::Metadata;
use tracing_subscriber::filter::{dynamic_filter_fn, filter_fn, FilterExt};
use tracing_subscriber::fmt::{self, format::DefaultFields, format::Format, MakeWriter};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Where a process writes its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The gateway's: a service's lines, collected from its standard output.
    Stdout,
    /// The CLI's: standard output is for results only (a new key is printed there alone).
    Stderr,
}

/// A process's log lines.
#[derive(Debug, Clone, Copy)]
pub struct Logs {
    pub stream: Stream,
    /// The targets that are for traces only: exported, never logged, off when traces are.
    pub traces_only: &'static [&'static str],
}

/// A span refused for export by what is entered around it (per span, not per callsite).
pub type Refusal = Box<dyn Fn(&Metadata<'_>, &Context<'_, Registry>) -> bool + Send + Sync>;

/// What a process exports, while traces are on.
pub struct Export {
    /// The tracer spans are exported with ([`crate::Exporting::tracer`]).
    pub tracer: SdkTracer,
    /// Whether a callsite's spans and events are exported at all (asked once per
    /// callsite: those it refuses are never built for OpenTelemetry).
    pub exported: fn(&Metadata<'_>) -> bool,
    /// Refuses, span by span, some of what `exported` lets through.
    pub refused: Option<Refusal>,
}

/// A layer of the subscriber, each on the registry itself, so that a filter's context
/// is the registry's.
type Boxed = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the process's global subscriber once; later calls (tests) do nothing.
pub fn install(logs: Logs, export: Option<Export>) {
    let json = std::env::var("SHARDGATE_LOG_FORMAT").is_ok_and(|v| v == "json");
    let lines = log_lines(logs.stream, json);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(layers(lines, filter, logs.traces_only, export))
        .try_init();
}

/// The subscriber [`install`] installs, its log lines plain text to `writer`, filtered
/// by `filter` rather than `RUST_LOG`: for a process's tests, which run work under its
/// own stack (`tracing::subscriber::with_default`).
pub fn stack<W>(
    logs: Logs,
    filter: EnvFilter,
    writer: W,
    export: Option<Export>,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let lines = formatted(fmt::layer().with_ansi(false).with_writer(writer), false);
    tracing_subscriber::registry().with(layers(lines, filter, logs.traces_only, export))
}

/// The subscriber's layers: `lines` filtered by `filter` (`RUST_LOG`'s) less
/// `traces_only`, and the bridge when exporting.
fn layers(
    lines: Boxed,
    filter: EnvFilter,
    traces_only: &'static [&'static str],
    export: Option<Export>,
) -> Vec<Boxed> {
    let logged = filter.and(filter_fn(move |meta| !traces_only.contains(&meta.target())));
    let mut layers = vec![lines.with_filter(logged).boxed()];
    if let Some(export) = export {
        layers.push(spans(export));
    }
    layers
}

/// The log lines' layer, unfiltered: to `stream`, coloured by [`colour`], or JSON.
fn log_lines(stream: Stream, json: bool) -> Boxed {
    let layer = tracing_subscriber::fmt::layer();
    match stream {
        Stream::Stdout => formatted(layer.with_ansi(colour(&std::io::stdout())), json),
        Stream::Stderr => formatted(
            layer
                .with_writer(std::io::stderr)
                .with_ansi(colour(&std::io::stderr())),
            json,
        ),
    }
}

fn formatted<W>(layer: fmt::Layer<Registry, DefaultFields, Format, W>, json: bool) -> Boxed
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    if json {
        layer.json().boxed()
    } else {
        layer.boxed()
    }
}

/// The bridge to OpenTelemetry, filtered by `export`.
fn spans(export: Export) -> Boxed {
    let Export {
        tracer,
        exported,
        refused,
    } = export;
    let bridge = tracing_opentelemetry::layer().with_tracer(tracer);
    let Some(refused) = refused else {
        return bridge.with_filter(filter_fn(exported)).boxed();
    };
    // Decided per span, so the callsite's interest is "sometimes" for what `exported`
    // lets through and "never" for the rest (those are never asked again).
    bridge
        .with_filter(
            dynamic_filter_fn(move |meta, cx| exported(meta) && !refused(meta, cx))
                .with_callsite_filter(move |meta| {
                    if exported(meta) {
                        Interest::sometimes()
                    } else {
                        Interest::never()
                    }
                }),
        )
        .boxed()
}

/// Whether what is written to `stream` may be coloured: it is a terminal, and `NO_COLOR`
/// is unset or empty. The one rule for log lines and the CLI's bars alike.
pub fn colour(stream: &impl IsTerminal) -> bool {
    stream.is_terminal() && no_color_allows(std::env::var_os("NO_COLOR"))
}

/// Whether `NO_COLOR`'s value (<https://no-color.org>) allows colour: unset or empty.
fn no_color_allows(value: Option<std::ffi::OsString>) -> bool {
    value.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};

    use super::*;

    #[test]
    fn no_color_set_to_anything_but_empty_turns_colour_off() {
        assert!(no_color_allows(None));
        assert!(no_color_allows(Some("".into())));
        assert!(!no_color_allows(Some("1".into())));
        assert!(!no_color_allows(Some("false".into())));
    }

    /// A log line writer that keeps what it is given.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A span exporter that keeps the names of the spans it is given.
    #[derive(Debug, Clone, Default)]
    struct Names(Arc<Mutex<Vec<String>>>);

    impl SpanExporter for Names {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            let names = batch.into_iter().map(|span| span.name.into_owned());
            self.0.lock().unwrap().extend(names);
            Ok(())
        }
    }

    /// `work` under the subscriber's layers as [`install`] stacks them, the `trip` target
    /// for traces only, log lines kept in memory and spans exported to memory: what was
    /// logged, and the names of the spans exported.
    fn run(refused: Option<Refusal>, work: impl FnOnce()) -> (String, Vec<String>) {
        let names = Names::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(names.clone())
            .build();
        let export = Export {
            tracer: provider.tracer("test"),
            exported: |meta| meta.target() == "trip" || meta.name() == "shown",
            refused,
        };
        let lines = Lines::default();
        let writer = lines.clone();
        let log_lines = formatted(
            fmt::layer()
                .with_ansi(false)
                .with_writer(move || writer.clone()),
            false,
        );
        let subscriber = tracing_subscriber::registry().with(layers(
            log_lines,
            EnvFilter::new("info"),
            &["trip"],
            Some(export),
        ));
        tracing::subscriber::with_default(subscriber, work);
        let mut exported = names.0.lock().unwrap().clone();
        exported.sort();
        let logged = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        (logged, exported)
    }

    fn work() {
        tracing::info_span!("shown").in_scope(|| {
            tracing::info!("a log line");
            let _trip = tracing::debug_span!(target: "trip", "trip").entered();
            tracing::info!(target: "trip", "for the trace only");
        });
        let _other = tracing::info_span!("not exported").entered();
    }

    #[test]
    fn traces_only_targets_are_exported_never_logged() {
        let (logged, exported) = run(None, work);
        assert!(logged.contains("a log line"), "{logged}");
        assert!(!logged.contains("for the trace only"), "{logged}");
        assert_eq!(exported, ["shown", "trip"]);
    }

    #[test]
    fn a_refusal_keeps_a_span_from_the_export_but_not_from_the_log_lines() {
        let refused: Refusal = Box::new(|meta, _cx| meta.name() == "trip");
        let (logged, exported) = run(Some(refused), work);
        assert!(logged.contains("a log line"), "{logged}");
        assert_eq!(exported, ["shown"]);
    }
}
