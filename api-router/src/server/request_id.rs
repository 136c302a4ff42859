//! Request ids: echoed from `x-request-id` or generated, put on the response, on the
//! request's tracing span, and (through a task-local) into every problem body. With
//! traces on, that span carries the request's `trace_id` and `span_id` too, so every
//! log line of the request names them.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use tracing::field::Empty;
use tracing::Instrument;

use super::traces::server_span::TraceIds;

pub use super::headers::REQUEST_ID as HEADER;

/// The target of the request's span (a log span only: never exported).
pub const SPAN_TARGET: &str = module_path!();

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served on this task, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Accepts a client's id when it is short and printable; otherwise makes a new one.
fn pick_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// `from_fn` middleware: the id goes on the tracing span, into the task-local that
/// problem bodies read, and onto the response.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = pick_id(&req);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.path(),
        trace_id = Empty,
        span_id = Empty,
    );
    if let Some(ids) = req.extensions().get::<TraceIds>() {
        span.record("trace_id", tracing::field::display(&ids.trace_id));
        span.record("span_id", tracing::field::display(&ids.span_id));
    }
    let header = HeaderValue::from_str(&id).ok();
    REQUEST_ID
        .scope(id, async move {
            let mut res = next.call(req).await?;
            if let Some(value) = header {
                res.headers_mut()
                    .insert(HeaderName::from_static(HEADER), value);
            }
            tracing::debug!(status = res.status().as_u16(), "done");
            Ok(res)
        })
        .instrument(span)
        .await
}
