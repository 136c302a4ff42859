//! A small OTLP/HTTP receiver on 127.0.0.1: `POST /v1/traces` with a protobuf
//! `ExportTraceServiceRequest`, decoded with `opentelemetry-proto`'s types and kept for
//! the test to read, as a collector would receive it (a gzipped body is inflated
//! first, and its `Content-Encoding` kept). The gateway's traces tests and the admin
//! CLI's point their processes' `OTEL_EXPORTER_OTLP_ENDPOINT` at it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::header::CONTENT_ENCODING;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// A received span with its resource's attributes.
#[derive(Debug, Clone)]
pub struct Received {
    pub span: Span,
    pub resource: Vec<KeyValue>,
}

impl Received {
    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    pub fn parent_span_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }

    /// The span's attribute `key`, as text (strings as they are, integers in decimal).
    pub fn attribute(&self, key: &str) -> Option<String> {
        value(&self.span.attributes, key)
    }

    pub fn resource_attribute(&self, key: &str) -> Option<String> {
        value(&self.resource, key)
    }

    /// The spans this one links to, as (trace id, span id).
    pub fn links(&self) -> Vec<(String, String)> {
        self.span
            .links
            .iter()
            .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
            .collect()
    }

    /// Whether this span links to `other`.
    pub fn links_to(&self, other: &Received) -> bool {
        self.links().contains(&(other.trace_id(), other.span_id()))
    }
}

/// A span event's attribute `key`, as text (as [`Received::attribute`]).
pub fn event_attribute(event: &Event, key: &str) -> Option<String> {
    value(&event.attributes, key)
}

fn value(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    match value.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        any_value::Value::BoolValue(b) => Some(b.to_string()),
        any_value::Value::DoubleValue(d) => Some(d.to_string()),
        other => Some(format!("{other:?}")),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The running receiver; stopped on drop.
pub struct Receiver {
    pub port: u16,
    spans: Arc<Mutex<Vec<Received>>>,
    /// Each export's `Content-Encoding`, empty when it had none.
    encodings: Arc<Mutex<Vec<String>>>,
    handle: ServerHandle,
    /// The runtime it was started on, which stops it.
    runtime: tokio::runtime::Handle,
}

impl Receiver {
    /// Starts a receiver on a port of its own; inside a tokio runtime, which it runs on.
    pub fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let encodings = Arc::new(Mutex::new(Vec::new()));
        let kept = spans.clone();
        let seen = encodings.clone();
        let server = HttpServer::new(move || {
            let kept = kept.clone();
            let seen = seen.clone();
            App::new()
                .app_data(web::PayloadConfig::new(16 << 20))
                .route(
                    "/v1/traces",
                    // actix-web inflates a gzipped body before the handler sees it.
                    web::post().to(move |req: HttpRequest, body: web::Bytes| {
                        let kept = kept.clone();
                        let encoding = req
                            .headers()
                            .get(CONTENT_ENCODING)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        seen.lock().unwrap().push(encoding);
                        async move { receive(&kept, &body) }
                    }),
                )
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("bind the receiver");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            port,
            spans,
            encodings,
            handle,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The first span `matches` accepts, waiting up to `limit` for it to arrive.
    pub async fn span(&self, limit: Duration, matches: impl Fn(&Received) -> bool) -> Received {
        let started = Instant::now();
        loop {
            if let Some(found) = self.spans.lock().unwrap().iter().find(|s| matches(s)) {
                return found.clone();
            }
            assert!(
                started.elapsed() < limit,
                "no such span within {limit:?}; received: {:#?}",
                self.spans
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|s| (s.span.name.clone(), s.trace_id()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Receiver {
    /// Each export's `Content-Encoding` so far (`gzip`), empty for one sent as it is.
    pub fn encodings(&self) -> Vec<String> {
        self.encodings.lock().unwrap().clone()
    }

    /// Every span received so far.
    pub fn received(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
    }

    /// The spans received once `ready` accepts them all, waiting up to `limit`.
    pub async fn until(
        &self,
        limit: Duration,
        ready: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let spans = self.received();
            if ready(&spans) {
                return spans;
            }
            assert!(
                started.elapsed() < limit,
                "not received within {limit:?}; received: {:#?}",
                spans
                    .iter()
                    .map(|s| (s.span.name.clone(), s.trace_id(), s.span_id()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        self.runtime.spawn(async move { handle.stop(false).await });
    }
}

fn receive(kept: &Mutex<Vec<Received>>, body: &[u8]) -> HttpResponse {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return HttpResponse::BadRequest().body("not an ExportTraceServiceRequest");
    };
    let mut kept = kept.lock().unwrap();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| r.attributes)
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                kept.push(Received {
                    span,
                    resource: resource.clone(),
                });
            }
        }
    }
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .body(ExportTraceServiceResponse::default().encode_to_vec())
}

/// The children of `parent` among `spans`, by start time.
pub fn children<'a>(spans: &'a [Received], parent: &Received) -> Vec<&'a Received> {
    let mut found: Vec<&Received> = spans
        .iter()
        .filter(|s| s.trace_id() == parent.trace_id() && s.parent_span_id() == parent.span_id())
        .collect();
    found.sort_by_key(|s| s.span.start_time_unix_nano);
    found
}

/// The names of `spans`.
pub fn names(spans: &[&Received]) -> Vec<String> {
    spans.iter().map(|s| s.span.name.clone()).collect()
}

/// The one child of `parent` called `name`.
pub fn child<'a>(spans: &'a [Received], parent: &Received, name: &str) -> &'a Received {
    let found = children(spans, parent);
    match found
        .iter()
        .filter(|s| s.span.name == name)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [only] => only,
        _ => panic!(
            "no single {name:?} under {}: {:?}",
            parent.span.name,
            names(&found)
        ),
    }
}

/// Asserts that the children of `parent` are `expected`, by name and in order, each
/// inside `parent` and ended before the next starts (a move's phases); returns them.
pub fn assert_steps_in_order<'a>(
    spans: &'a [Received],
    parent: &Received,
    expected: &[&str],
) -> Vec<&'a Received> {
    let steps = children(spans, parent);
    assert_eq!(names(&steps), expected, "{steps:?}");
    for pair in steps.windows(2) {
        assert!(pair[0].span.end_time_unix_nano <= pair[1].span.start_time_unix_nano);
    }
    for step in &steps {
        assert!(step.span.start_time_unix_nano >= parent.span.start_time_unix_nano);
        assert!(step.span.end_time_unix_nano <= parent.span.end_time_unix_nano);
    }
    steps
}

/// OTLP's STATUS_CODE_ERROR.
pub const STATUS_ERROR: i32 = 2;

/// Asserts that `mv` is the span of move `id` of `kind`, of one slot (`slot`) from shard
/// `from` to shard `to`, that took the map from version `before` to the next, ended done
/// and not in error.
pub fn assert_move_done(
    mv: &Received,
    id: i64,
    kind: &str,
    slot: &str,
    (from, to): (u32, u32),
    before: i64,
) {
    let expected = [
        ("shardgate.move_id", id.to_string()),
        ("shardgate.move.kind", kind.to_owned()),
        ("shardgate.slots", slot.to_owned()),
        ("shardgate.slot_count", "1".to_owned()),
        ("shardgate.from_shard", from.to_string()),
        ("shardgate.to_shard", to.to_string()),
        ("shardgate.map_version_before", before.to_string()),
        ("shardgate.map_version_after", (before + 1).to_string()),
        ("shardgate.move.phase_at_end", "done".to_owned()),
    ];
    for (key, value) in expected {
        assert_eq!(mv.attribute(key), Some(value), "{key} of {mv:?}");
    }
    assert_ne!(
        mv.span.status.as_ref().map_or(0, |s| s.code),
        STATUS_ERROR,
        "{mv:?}"
    );
}

/// The events of `span` called `name`.
pub fn events<'a>(span: &'a Received, name: &str) -> Vec<&'a Event> {
    span.span.events.iter().filter(|e| e.name == name).collect()
}
