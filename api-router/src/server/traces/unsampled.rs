//! An unsampled request builds no spans for export. The sampler decides once, on the
//! server span; every span under it shares that decision (parent-based), so building
//! them for a request nobody will see is pure cost: their fields formatted, their
//! OpenTelemetry data made and thrown away. The server span of an unsampled request is
//! marked ([`mark`]), and two checks read the mark:
//!
//! - [`Gate`], a layer in front of all others, turns the spans and events that exist
//!   only for traces (the request path's, the moves') off outright inside such a request:
//!   they are not built at all, their fields not even evaluated, and
//!   `shard_manager::spans::enabled()` answers false there (no trip span, no link to a
//!   batch).
//! - [`under_unsampled`], in the OpenTelemetry layer's own filter, keeps from it every
//!   other span and event of the request (those the log lines still get).
//!
//! A batch that carries sampled and unsampled requests is still built, with the sampled
//! ones' links: it is a root made outside any request, or with a sampled requester's span
//! current (`shard_manager::spans::batch`).

use tracing::subscriber::Interest;
use tracing::{Metadata, Span, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Registry;

/// The mark on an unsampled request's server span.
#[derive(Debug, Clone, Copy)]
struct Unsampled;

/// Marks `span` (a server span the sampler did not record) so that nothing is built
/// under it for export. Does nothing when the subscriber is not a [`Registry`] stack.
pub fn mark(span: &Span) {
    span.with_subscriber(|(id, dispatch)| {
        if let Some(registry) = dispatch.downcast_ref::<Registry>() {
            if let Some(span) = registry.span(id) {
                span.extensions_mut().insert(Unsampled);
            }
        }
    });
}

/// Whether the work `cx` is in belongs to an unsampled request, as a per-layer filter
/// sees it: the nearest span the filter let through (an unsampled request's children
/// never are) carries the mark.
pub fn under_unsampled<S>(cx: &Context<'_, S>) -> bool
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    cx.lookup_current()
        .is_some_and(|span| span.extensions().get::<Unsampled>().is_some())
}

/// Whether the current span or any above it carries the mark.
fn in_unsampled<S>(cx: &Context<'_, S>) -> bool
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    cx.lookup_current().is_some_and(|current| {
        current
            .scope()
            .any(|span| span.extensions().get::<Unsampled>().is_some())
    })
}

/// The layer that turns the traces-only targets off inside an unsampled request, for
/// every layer: it goes outermost. `traces_only` names those targets; anything else it
/// leaves to the layers behind it.
pub struct Gate {
    pub traces_only: fn(&str) -> bool,
}

impl<S> Layer<S> for Gate
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if (self.traces_only)(meta.target()) {
            // Decided per call: on, unless inside an unsampled request.
            Interest::sometimes()
        } else {
            Interest::always()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, cx: Context<'_, S>) -> bool {
        !(self.traces_only)(meta.target()) || !in_unsampled(&cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use tracing::subscriber::with_default;
    use tracing::Level;
    use tracing_subscriber::filter::{dynamic_filter_fn, filter_fn};
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    const TRACES_ONLY: &str = "traces_only";

    /// Counts the spans and events a layer is given.
    struct Counting(Arc<AtomicUsize>);

    impl<S: Subscriber> Layer<S> for Counting {
        fn on_new_span(
            &self,
            _: &tracing::span::Attributes<'_>,
            _: &tracing::span::Id,
            _: Context<'_, S>,
        ) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }

        fn on_event(&self, _: &tracing::Event<'_>, _: Context<'_, S>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// What one request's work was given to: (the exporting layer, the log layer,
    /// whether a traces-only span was on inside it).
    #[derive(Debug, PartialEq, Eq)]
    struct Seen {
        exported: usize,
        logged: usize,
        traces_only_on: bool,
    }

    /// The gateway's stack in small: a log layer that never sees the traces-only
    /// target, an exporting layer filtered by [`under_unsampled`], the [`Gate`]
    /// outermost. Inside a server span (marked when `sampled` is false): a span for
    /// both, under it a traces-only span, a warning, and the traces-only check.
    fn request(sampled: bool) -> Seen {
        let exported = Arc::new(AtomicUsize::new(0));
        let logged = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry()
            .with(
                Counting(logged.clone())
                    .with_filter(filter_fn(|meta| meta.target() != TRACES_ONLY)),
            )
            .with(
                Counting(exported.clone())
                    .with_filter(dynamic_filter_fn(|_, cx| !under_unsampled(cx))),
            )
            .with(Gate {
                traces_only: |target| target == TRACES_ONLY,
            });
        let mut traces_only_on = false;
        with_default(subscriber, || {
            let server = tracing::info_span!("HTTP request");
            if !sampled {
                mark(&server);
            }
            server.in_scope(|| {
                tracing::info_span!("read").in_scope(|| {
                    let _trip = tracing::debug_span!(target: TRACES_ONLY, "trip");
                    tracing::warn!("inside");
                    traces_only_on = tracing::enabled!(target: TRACES_ONLY, Level::DEBUG);
                });
            });
        });
        Seen {
            exported: exported.load(Ordering::Relaxed),
            logged: logged.load(Ordering::Relaxed),
            traces_only_on,
        }
    }

    #[test]
    fn a_sampled_request_builds_everything_under_it() {
        let seen = request(true);
        // exported: server, read, trip, the warning; logged: all but the trip
        let want = Seen {
            exported: 4,
            logged: 3,
            traces_only_on: true,
        };
        assert_eq!(seen, want);
    }

    #[test]
    fn an_unsampled_request_exports_nothing_below_its_server_span_and_builds_no_trip() {
        let seen = request(false);
        // exported: the server span alone; logged as when sampled
        let want = Seen {
            exported: 1,
            logged: 3,
            traces_only_on: false,
        };
        assert_eq!(seen, want);
    }
}
