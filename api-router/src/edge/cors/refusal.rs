//! A refused preflight as the gateway answers every client mistake: a problem+json
//! naming what was refused (`actix-cors` itself answers 400 in plain text).

use std::sync::Arc;

use actix_cors::CorsError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::middleware::Next;
use actix_web::ResponseError;

use super::CorsSettings;
use crate::error::ApiError;
use crate::server::headers::HeaderError;

/// `from_fn` middleware around the CORS one: its refusals become problems.
pub async fn refusals(
    settings: Arc<CorsSettings>,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let asked = Asked::of(req.headers());
    let res = next.call(req).await?;
    let refused = res
        .response()
        .error()
        .and_then(|e| e.as_error::<CorsError>())
        .map(|e| problem(e, &asked, &settings));
    match refused {
        None => Ok(res.map_into_left_body()),
        Some(problem) => {
            let (req, _) = res.into_parts();
            Ok(ServiceResponse::new(req, problem.error_response()).map_into_right_body())
        }
    }
}

/// What a preflight asked for, as text to quote back (at most 200 bytes each).
#[derive(Debug, Default)]
struct Asked {
    origin: String,
    method: String,
    headers: String,
}

impl Asked {
    fn of(headers: &HeaderMap) -> Self {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(200).collect())
                .unwrap_or_default()
        };
        Self {
            origin: text(header::ORIGIN),
            method: text(header::ACCESS_CONTROL_REQUEST_METHOD),
            headers: text(header::ACCESS_CONTROL_REQUEST_HEADERS),
        }
    }
}

/// The problem for one refusal: 403 for what the policy does not allow, 400 for a
/// preflight that is malformed.
fn problem(err: &CorsError, asked: &Asked, settings: &CorsSettings) -> ApiError {
    let malformed = |name: &'static str| ApiError::BadHeader(HeaderError::new(name, err));
    match err {
        CorsError::OriginNotAllowed => ApiError::CorsRefused(format!(
            "the origin {:?} may not call this gateway from a browser; it is not in server.cors.allowed_origins",
            asked.origin
        )),
        CorsError::MethodNotAllowed => ApiError::CorsRefused(format!(
            "the method {:?} is not allowed cross-origin; allowed: {}",
            asked.method,
            settings.allowed_methods.join(", ")
        )),
        CorsError::HeadersNotAllowed => ApiError::CorsRefused(format!(
            "a requested header ({}) is not allowed cross-origin; allowed: {}",
            asked.headers,
            settings.allowed_headers.join(", ")
        )),
        CorsError::BadRequestHeaders => malformed("access-control-request-headers"),
        CorsError::BadRequestMethod | CorsError::MissingRequestMethod => {
            malformed("access-control-request-method")
        }
        _ => malformed("origin"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_what_was_refused() {
        let settings = CorsSettings::default();
        let asked = Asked {
            origin: "https://evil.example".into(),
            method: "PUT".into(),
            headers: "x-secret".into(),
        };
        let text = |e| problem(&e, &asked, &settings).to_string();
        assert_eq!(
            text(CorsError::OriginNotAllowed),
            "the origin \"https://evil.example\" may not call this gateway from a browser; it is not in server.cors.allowed_origins"
        );
        assert_eq!(
            text(CorsError::MethodNotAllowed),
            "the method \"PUT\" is not allowed cross-origin; allowed: GET, POST, DELETE"
        );
        assert!(text(CorsError::HeadersNotAllowed).starts_with(
            "a requested header (x-secret) is not allowed cross-origin; allowed: authorization, content-type, x-shard-key"
        ));
        let err = problem(&CorsError::BadRequestMethod, &asked, &settings);
        assert_eq!(err.kind().0.as_u16(), 400);
        assert_eq!(
            problem(&CorsError::OriginNotAllowed, &asked, &settings)
                .kind()
                .0
                .as_u16(),
            403
        );
    }
}
