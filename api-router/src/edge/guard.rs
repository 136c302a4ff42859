//! The `Host` check: a request naming a host the gateway does not serve is answered 421
//! before any handler runs. A local gateway is otherwise reachable from any web page
//! through DNS rebinding (a name the attacker controls, re-pointed at 127.0.0.1).

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HOST;
use actix_web::middleware::Next;
use actix_web::ResponseError;

use crate::error::ApiError;
use crate::server::settings::ServerSettings;

/// `from_fn` middleware: refuses hosts outside `server.allowed_hosts`.
pub async fn check_host(
    server: Arc<ServerSettings>,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    // The Host header itself (cheaper than the full connection info). A request without
    // one (HTTP/1.0, a load balancer's bare health check) names no host a browser could
    // have been tricked into, so it passes.
    let host = match req.headers().get(HOST) {
        None => return next.call(req).await.map(|res| res.map_into_left_body()),
        Some(value) => String::from_utf8_lossy(value.as_bytes()),
    };
    if server.allows_host(&host) {
        return next.call(req).await.map(|res| res.map_into_left_body());
    }
    let err = ApiError::MisdirectedHost(host.chars().take(100).collect());
    let res = err.error_response();
    Ok(req.into_response(res).map_into_right_body())
}
