//! An unsampled request makes no span for its trace. The sampler decides at the
//! request's root, before its server span exists (`telemetry::root`): a request it
//! leaves out gets no server span, and its work runs marked unsampled
//! (`shard_manager::spans::unsampled`, carried into a task the request starts), so the
//! request path makes none of its spans (it checks the mark before making one). The
//! only spans made are those for the log lines (the request id's), as with traces off.
//!
//! The OpenTelemetry layer's filter refuses the rest of what such work makes (a warning
//! event, a span of the workspace's at `INFO`) with [`under_unsampled`]. A filter alone
//! cannot keep a span from being made: `tracing-subscriber` makes a span that every
//! filtered layer refuses (a registry entry no layer is told of).
//!
//! A batch that carries several requests is a root span of its own, named `batch`
//! (`shard_manager::spans::batch`): the filter lets it through whatever request's work
//! made it, and the sampler decides it as any new trace (an unsampled request gives it
//! no link).
//!
//! A task of a request's own that carries neither the mark nor a span the filter let
//! through, but only the request's log span, is an unsampled request's too: a request
//! path span made in it is refused.

use shard_manager::spans::TARGET as REQUEST_PATH;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The name of a batch's own root span, which the filter never refuses.
pub const BATCH: &str = "batch";

/// Whether the filter refuses `meta` as part of an unsampled request, `meta` not being
/// a batch's own root: the work running is marked unsampled; or, for a span of the
/// request path, spans are entered but none the filter let through.
pub fn under_unsampled<S>(meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    if meta.name() == BATCH {
        return false;
    }
    if shard_manager::spans::is_unsampled() {
        return true;
    }
    meta.target() == REQUEST_PATH
        && cx.lookup_current().is_none()
        && cx.current_span().id().is_some()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use actix_web::middleware::from_fn;
    use actix_web::{test, web, App, HttpResponse};
    use control_plane::keys::KeyRing;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};
    use shard_manager::routing::{Role, ShardId};
    use shard_manager::spans::{self, Peer};
    use telemetry::sampler::FollowsLinks;
    use telemetry::RootSampler;
    use tracing::span::{Attributes, Id};
    use tracing::subscriber::Interest;
    use tracing::Instrument;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::EnvFilter;

    use super::*;
    use crate::access::Access;
    use crate::limits::Limits;
    use crate::server::request_id::request_id;
    use crate::server::traces::exported;
    use crate::server::traces::server_span::server_span;

    /// Counts every span made, whatever layer takes it: on top of the stack, a layer
    /// without a filter that asks for every callsite each time (`sometimes`) and leaves
    /// the decision to the layers under it.
    struct Made(Arc<AtomicUsize>);

    impl<S: Subscriber> tracing_subscriber::Layer<S> for Made {
        fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
            Interest::sometimes()
        }
        fn on_new_span(&self, _: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An exporter that keeps the names of the spans it is given.
    #[derive(Debug, Clone, Default)]
    struct Names(Arc<Mutex<Vec<String>>>);

    impl SpanExporter for Names {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            let names = batch.into_iter().map(|span| span.name.into_owned());
            self.0.lock().unwrap().extend(names);
            Ok(())
        }
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

    /// What a request path makes: a span of the workspace's (logged and exported), a
    /// trip to a server under it and a wait under the trip (exported only), a warning.
    async fn read() -> HttpResponse {
        let peer = Peer::new(ShardId(0), Role::Replica, "127.0.0.1:5432", "shardgate");
        async {
            let trip = spans::trip(&peer, "find");
            async { spans::wait("connection").in_scope(|| tracing::warn!("slow server")) }
                .instrument(trip)
                .await;
        }
        .instrument(tracing::info_span!("reading"))
        .await;
        HttpResponse::Ok().finish()
    }

    /// What one request of the gateway made, under the gateway's own subscriber stack
    /// and trace middleware (the server span, the request id), its sampler at `ratio`.
    struct Served {
        /// Spans made, whatever layer took them.
        made: usize,
        /// The names of the spans exported, sorted.
        exported: Vec<String>,
        /// The log lines.
        logged: String,
        /// The answer's `traceresponse`.
        traceresponse: String,
    }

    async fn serve(ratio: f64, traceparent: Option<&str>) -> Served {
        let sampler = FollowsLinks::new(Box::new(Sampler::ParentBased(Box::new(
            Sampler::TraceIdRatioBased(ratio),
        ))));
        let names = Names::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(names.clone())
            .with_sampler(sampler.clone())
            .build();
        let lines = Lines::default();
        let writer = lines.clone();
        let made = Arc::new(AtomicUsize::new(0));
        let subscriber = telemetry::stack(
            exported::LOGS,
            EnvFilter::new("info"),
            move || writer.clone(),
            Some(exported::export_with(provider.tracer("test"))),
        )
        .with(Made(made.clone()));
        let access = Arc::new(Access {
            ring: Arc::new(KeyRing::unknown()),
            protected_mode: true,
            limits: Arc::new(Limits::new(&Default::default())),
        });
        let root = Some(RootSampler::new(sampler));
        let _default = tracing::subscriber::set_default(subscriber);
        let app = test::init_service(
            App::new()
                .wrap(from_fn(request_id))
                .wrap(from_fn(move |req, next| {
                    server_span(access.clone(), root.clone(), req, next)
                }))
                .route("/read", web::get().to(read)),
        )
        .await;
        let mut req = test::TestRequest::get()
            .uri("/read")
            .peer_addr("127.0.0.1:40000".parse().unwrap());
        if let Some(traceparent) = traceparent {
            req = req.insert_header(("traceparent", traceparent));
        }
        let res = test::call_service(&app, req.to_request()).await;
        assert!(res.status().is_success());
        let traceresponse = res
            .headers()
            .get("traceresponse")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        drop(res);
        provider.force_flush().unwrap();
        let mut exported = names.0.lock().unwrap().clone();
        exported.sort();
        let logged = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        Served {
            made: made.load(Ordering::Relaxed),
            exported,
            logged,
            traceresponse,
        }
    }

    const CALLER: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[actix_web::test]
    async fn a_sampled_request_makes_and_exports_its_whole_tree() {
        let served = serve(0.0, Some(&format!("00-{CALLER}-00f067aa0ba902b7-01"))).await;
        // Made: the server span, the request id's, `reading`, the trip, the wait.
        assert_eq!(served.made, 5);
        assert_eq!(
            served.exported,
            ["GET /read", "find", "reading", "wait for a connection"]
        );
        assert!(served.logged.contains("slow server"), "{}", served.logged);
        assert!(served.traceresponse.starts_with(&format!("00-{CALLER}-")));
        assert!(
            served.traceresponse.ends_with("-01"),
            "{}",
            served.traceresponse
        );
    }

    #[actix_web::test]
    async fn an_unsampled_request_makes_only_its_log_lines_spans_and_exports_nothing() {
        for (ratio, traceparent) in [
            // The caller's flag decides, whatever the ratio.
            (1.0, Some(format!("00-{CALLER}-00f067aa0ba902b7-00"))),
            // A new trace: the ratio decides.
            (0.0, None),
        ] {
            let served = serve(ratio, traceparent.as_deref()).await;
            // Made: the request id's span and `reading`, for the log lines alone.
            assert_eq!(served.made, 2, "{traceparent:?}");
            assert!(served.exported.is_empty(), "{:?}", served.exported);
            // The log lines are as ever, and name the trace.
            assert!(served.logged.contains("slow server"), "{}", served.logged);
            assert!(served.logged.contains("reading"), "{}", served.logged);
            let (_, rest) = served.traceresponse.split_once('-').unwrap();
            let (trace, _) = rest.split_once('-').unwrap();
            assert!(served.logged.contains(trace), "{}", served.logged);
            assert!(
                served.traceresponse.ends_with("-00"),
                "{}",
                served.traceresponse
            );
            if traceparent.is_some() {
                assert_eq!(trace, CALLER);
            }
        }
    }
}
