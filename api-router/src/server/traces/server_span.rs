//! The HTTP server span of every sampled request, when tracing is on: named and described with
//! OpenTelemetry's HTTP semantic conventions (`http.request.method`, `url.path`,
//! `http.route`, `http.response.status_code`, ...), a child of the caller's W3C
//! `traceparent`/`tracestate` when they parse (anything malformed is ignored, as the
//! W3C spec asks: a fresh trace, never an error), and named back to the caller in the
//! answer's `traceresponse` header. The handler runs inside the span, so every span and
//! log line of the request nests under it; the request id's span carries its ids
//! ([`TraceIds`]) into the log lines.
//!
//! The sampler decides before the span exists (`telemetry::root`, parent-based on the
//! caller's flag, else the ratio): an unsampled request gets no server span and makes
//! no span below it ([`super::unsampled`]); its answer's `traceresponse` and its log
//! lines still name the trace and a span id, not sampled.
//!
//! A caller's context is trusted only from a caller the gateway knows
//! ([`Access::identify`]: a live key once keys exist, any scope; otherwise a client it
//! serves without one). The sampler decides here, before any route checks a key, so the check is made here too: from anyone else, the span starts
//! a trace of its own, which the gateway's sampler decides, and the caller's span is
//! only a link (without its `tracestate`). Otherwise a caller without a key would have
//! its refused requests recorded at its word, filling the export's queue, and put them
//! in anyone's trace.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{Link, SpanContext, SpanKind, TraceContextExt, TraceState};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use telemetry::{OpenTelemetrySpanExt, Root, RootSampler};
use tracing::field::Empty;
use tracing::Instrument;

use crate::access::Access;
use crate::server::headers::{TRACEPARENT, TRACERESPONSE};

/// The target of the server span: exported, and left out of the log lines (the request
/// id's span stands for it there).
pub const TARGET: &str = "shardgate::http";

/// The request's trace and server span, for its log lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceIds {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// Whether the sampler recorded it: only then is there a trace to look up.
    pub sampled: bool,
}

/// The caller's headers, as the propagator reads them.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// The caller's trace context: an empty context (a new trace) when it is absent or
/// does not parse.
pub fn caller_context(headers: &HeaderMap) -> opentelemetry::Context {
    let well_formed = headers
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(fields_well_formed);
    if !well_formed {
        return opentelemetry::Context::new();
    }
    TraceContextPropagator::new().extract(&Headers(headers))
}

/// Whether a `traceparent`'s first four fields have the lengths W3C gives them (2, 32,
/// 16 and 2 lowercase hex digits). The propagator checks the rest (version, zero ids,
/// what may follow) but would take a short id, zero-padded, for a whole one.
fn fields_well_formed(traceparent: &str) -> bool {
    let mut fields = traceparent.trim().split('-');
    [2, 32, 16, 2].into_iter().all(|len| {
        fields.next().is_some_and(|f| {
            f.len() == len && f.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
    })
}

/// The context the request's trace starts from and the caller's span to link: the
/// `caller`'s context when the caller is `known`; otherwise a trace of its own, linked
/// to the caller's span, if any (a remote link, which the sampler leaves out of its
/// decision: `telemetry::sampler`).
fn continue_or_link(
    caller: opentelemetry::Context,
    known: bool,
) -> (opentelemetry::Context, Option<SpanContext>) {
    let remote = caller.span().span_context().clone();
    if known || !remote.is_valid() {
        return (caller, None);
    }
    let link = SpanContext::new(
        remote.trace_id(),
        remote.span_id(),
        remote.trace_flags(),
        true,
        TraceState::NONE,
    );
    (opentelemetry::Context::new(), Some(link))
}

/// `00-<trace-id>-<span-id>-<flags>`, the W3C Trace Context level 2 `traceresponse`.
pub fn traceresponse(span: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        span.trace_id(),
        span.span_id(),
        span.trace_flags().to_u8()
    )
}

/// `http.request.method`: the known methods as they are, any other `_OTHER`.
fn method_name(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "_OTHER",
    }
}

fn protocol_version(version: actix_web::http::Version) -> &'static str {
    use actix_web::http::Version;
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// The name a server span has until it is routed.
const NAME: &str = "HTTP request";

/// `from_fn` middleware: the request's trace, decided before any span of it exists
/// (`sampler`: None when traces are off, and then the middleware is not wrapped): a
/// sampled request's server span, in the caller's trace when `access` knows the caller,
/// an unsampled request's mark and no span; either way its ids for the log lines, and
/// `traceresponse` on the answer.
pub async fn server_span<B: MessageBody>(
    access: Arc<Access>,
    sampler: Option<RootSampler>,
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let Some(sampler) = sampler else {
        return next.call(req).await;
    };
    let caller = caller_context(req.headers());
    let known = caller.span().span_context().is_valid()
        && access
            .identify(req.peer_addr(), req.headers().get(AUTHORIZATION))
            .is_ok();
    let (parent, link) = continue_or_link(caller, known);
    let links: Vec<Link> = link.iter().cloned().map(Link::with_context).collect();
    match sampler.decide(parent, NAME, &SpanKind::Server, &links) {
        Root::Sampled(parent) => sampled(parent, link, req, next).await,
        Root::Unsampled(ids) => {
            note_ids(&req, &ids);
            let res = shard_manager::spans::unsampled(next.call(req)).await?;
            Ok(with_traceresponse(res, &ids))
        }
    }
}

/// A sampled request: its server span, started from `parent` (linked to `link`), and
/// its work inside it.
async fn sampled<B: MessageBody>(
    parent: opentelemetry::Context,
    link: Option<SpanContext>,
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let method = method_name(req.method());
    let scheme = req.connection_info().scheme().to_owned();
    let span = tracing::info_span!(
        target: TARGET,
        "HTTP request",
        otel.name = method,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        http.route = Empty,
        http.response.status_code = Empty,
        error.type = Empty,
        url.path = req.path(),
        url.scheme = scheme,
        network.protocol.version = protocol_version(req.version()),
        client.address = Empty,
        user_agent.original = Empty,
    );
    if let Some(peer) = req.peer_addr() {
        span.record("client.address", peer.ip().to_string());
    }
    if let Some(agent) = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        span.record("user_agent.original", agent);
    }
    let _ = span.set_parent(parent);
    if let Some(link) = link {
        span.add_link(link);
    }
    // Starts the span (the sampler records a root decided sampled), and the ids are
    // known from now on.
    let started = span.context();
    let ids = started.span().span_context().clone();
    note_ids(&req, &ids);
    let work = next.call(req).instrument(span.clone());
    // Not recorded after all only when the export has stopped.
    let mut res = if ids.is_sampled() {
        work.await?
    } else {
        shard_manager::spans::unsampled(work).await?
    };
    let status = res.status();
    if let Some(route) = res.request().match_pattern() {
        // Named once routed; a started span takes its new name from the API, not from
        // an `otel.name` field.
        started.span().update_name(format!("{method} {route}"));
        span.record("http.route", route);
    }
    span.record("http.response.status_code", status.as_u16());
    // A 5xx is the server's error: its status code is the error's type, as
    // OpenTelemetry's HTTP conventions have it (a 4xx is the client's, not the span's).
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", status.as_str());
    }
    res = with_traceresponse(res, &ids);
    Ok(res)
}

/// The request's trace ids, for its log lines and exemplars.
fn note_ids(req: &ServiceRequest, ids: &SpanContext) {
    if ids.is_valid() {
        req.extensions_mut().insert(TraceIds {
            trace_id: ids.trace_id().to_string(),
            span_id: ids.span_id().to_string(),
            sampled: ids.is_sampled(),
        });
    }
}

/// `res` with a `traceresponse` naming `ids`.
fn with_traceresponse<B>(mut res: ServiceResponse<B>, ids: &SpanContext) -> ServiceResponse<B> {
    if ids.is_valid() {
        if let Ok(value) = HeaderValue::from_str(&traceresponse(ids)) {
            res.headers_mut()
                .insert(HeaderName::from_static(TRACERESPONSE), value);
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn remote(pairs: &[(&'static str, &str)]) -> SpanContext {
        caller_context(&headers(pairs))
            .span()
            .span_context()
            .clone()
    }

    #[test]
    fn a_valid_traceparent_is_continued_with_its_tracestate() {
        let caller = remote(&[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("tracestate", "vendor=abc"),
        ]);
        assert!(caller.is_valid() && caller.is_remote() && caller.is_sampled());
        assert_eq!(
            caller.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(caller.span_id().to_string(), "00f067aa0ba902b7");
        assert_eq!(caller.trace_state().get("vendor"), Some("abc"));
        assert_eq!(
            traceresponse(&caller),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
    }

    #[test]
    fn malformed_traceparents_start_a_new_trace() {
        for bad in [
            "",
            "garbage",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero span id
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", // 00 with more
            "00-4bf92f3577b34da6a3ce929d-00f067aa0ba902b7-01",         // short trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-f067aa0ba902b7-01",   // short span id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",  // short flags
        ] {
            assert!(
                !remote(&[("traceparent", bad)]).is_valid(),
                "{bad:?} was continued"
            );
        }
        assert!(!remote(&[]).is_valid());
    }
}
