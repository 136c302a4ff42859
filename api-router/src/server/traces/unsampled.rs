//! An unsampled request gives OpenTelemetry none of its spans. The sampler decides once,
//! on the server span; every span under it shares that decision (parent-based), so
//! handing them to the OpenTelemetry layer for a request nobody will see is pure cost:
//! their attributes converted, their OpenTelemetry data made and thrown away. The server
//! span of an unsampled request is marked ([`mark`]) and the layer's filter refuses
//! whatever is made under it ([`under_unsampled`]).
//!
//! What the filter cannot do is keep those spans from being made at all: a filter per
//! layer answers per call only for callsites some layer may want, and then a span is
//! made (a registry entry, no layer told) even when every layer refuses it. Spans a
//! filter never wants (`never` at their callsite: traces off, or a target no layer
//! takes) are not made.
//!
//! A batch that carries several requests is a root span of its own, named `batch`
//! (`shard_manager::spans::batch`): the filter lets it through whatever request's work
//! made it, and the sampler decides it as any new trace, as before.
//!
//! The filter looks for the mark among the spans entered on the thread, as the
//! OpenTelemetry layer looks there for a new span's parent. A task of a request's own
//! carries the spans it was given, not those of its request: when it carries none the
//! filter let through (an unsampled request's transaction, whose span was refused, in
//! its coordinator's task beneath the request's log span), a request path span made in
//! it would be a root of its own, and is refused too.

use shard_manager::spans::TARGET as REQUEST_PATH;
use tracing::{Metadata, Span, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Registry;

/// The name of a batch's own root span, which the filter never refuses.
pub const BATCH: &str = "batch";

/// The mark on an unsampled request's server span.
#[derive(Debug, Clone, Copy)]
struct Unsampled;

/// Marks `span` (a server span the sampler did not record) so that nothing made under
/// it is exported. Does nothing when the subscriber is not a [`Registry`] stack.
pub fn mark(span: &Span) {
    span.with_subscriber(|(id, dispatch)| {
        if let Some(registry) = dispatch.downcast_ref::<Registry>() {
            if let Some(span) = registry.span(id) {
                span.extensions_mut().insert(Unsampled);
            }
        }
    });
}

/// Whether the filter refuses `meta` as part of an unsampled request, `meta` not being
/// a batch's own root: the nearest span the filter let through (an unsampled request's
/// children never are) carries the mark; or, for a span of the request path, spans are
/// entered but none the filter let through.
pub fn under_unsampled<S>(meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    if meta.name() == BATCH {
        return false;
    }
    match cx.lookup_current() {
        Some(span) => span.extensions().get::<Unsampled>().is_some(),
        None => meta.target() == REQUEST_PATH && cx.current_span().id().is_some(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use tracing::subscriber::with_default;
    use tracing_subscriber::filter::{dynamic_filter_fn, filter_fn};
    use tracing_subscriber::layer::{Layer, SubscriberExt};

    use super::*;

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

    /// What one request's work was given to: (the exporting layer, the log layer).
    /// The gateway's stack in small: a log layer that never sees the `trip` target, an
    /// exporting layer filtered by [`under_unsampled`]. Inside a server span (marked
    /// when `sampled` is false): a span for both, under it a trip, a warning, and a
    /// batch's root.
    fn request(sampled: bool) -> (usize, usize) {
        let exported = Arc::new(AtomicUsize::new(0));
        let logged = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry()
            .with(Counting(logged.clone()).with_filter(filter_fn(|meta| meta.target() != "trip")))
            .with(
                Counting(exported.clone())
                    .with_filter(dynamic_filter_fn(|meta, cx| !under_unsampled(meta, cx))),
            );
        with_default(subscriber, || {
            let server = tracing::info_span!("HTTP request");
            if !sampled {
                mark(&server);
            }
            server.in_scope(|| {
                tracing::info_span!("read").in_scope(|| {
                    let _trip = tracing::debug_span!(target: "trip", "trip");
                    tracing::warn!("inside");
                    let _batch = tracing::debug_span!(target: "trip", parent: None, "batch");
                });
            });
        });
        (
            exported.load(Ordering::Relaxed),
            logged.load(Ordering::Relaxed),
        )
    }

    #[test]
    fn a_sampled_request_exports_everything_under_it() {
        // exported: server, read, trip, the warning, the batch; logged: server, read, the warning
        assert_eq!(request(true), (5, 3));
    }

    #[test]
    fn an_unsampled_request_exports_only_its_server_span_and_batches() {
        // exported: the server span and the batch's root; logged as when sampled
        assert_eq!(request(false), (2, 3));
    }

    #[test]
    fn the_request_path_is_refused_where_no_span_entered_was_let_through() {
        // An exporting layer that never sees the `log` target (the request id's span).
        let exported = Arc::new(AtomicUsize::new(0));
        let subscriber =
            tracing_subscriber::registry().with(Counting(exported.clone()).with_filter(
                dynamic_filter_fn(|meta, cx| meta.target() != "log" && !under_unsampled(meta, cx)),
            ));
        with_default(subscriber, || {
            // No span entered: not this filter's to refuse.
            let _alone = tracing::debug_span!(target: REQUEST_PATH, "transaction");
            // A task that carries only the request's log span: the request path is
            // refused, anything else let through.
            tracing::info_span!(target: "log", "request").in_scope(|| {
                let _trip = tracing::debug_span!(target: REQUEST_PATH, "trip");
                let _other = tracing::info_span!("other");
            });
        });
        // exported: the transaction outside any span, and the other target's span
        assert_eq!(exported.load(Ordering::Relaxed), 2);
    }
}
