//! Request bodies, read and parsed within bounds: the media type must be JSON, the
//! body must arrive within `server.body_timeout_ms` and stay under its endpoint's byte
//! limit, and the JSON is first read by [`super::json_limits`], which stops at the first
//! value past the depth, value-count or record-count limit and allocates nothing; only
//! then is the body typed. So no body, however shaped or however slowly sent, holds
//! more than its limits allow.

use actix_web::dev::Payload;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::web::BytesMut;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::json_limits::{self, JsonLimitError, JsonLimits};
use crate::error::ApiError;
use crate::server::settings::ServerSettings;
use crate::state::AppState;

/// A body type and the limits its endpoint reads it under: by default a single
/// request's (`max_body_bytes`, `max_json_depth`, `max_json_values`); a body that
/// carries many operations says so.
pub trait Bounded: DeserializeOwned + 'static {
    /// The most bytes of body accepted.
    fn max_bytes(server: &ServerSettings) -> usize {
        server.max_body_bytes
    }
    /// The JSON limits checked while parsing.
    fn limits(server: &ServerSettings) -> JsonLimits {
        JsonLimits {
            max_depth: server.max_json_depth,
            max_values: server.max_json_values,
            counted_array: None,
        }
    }
}

/// A JSON body of type `T`, read and parsed within `T`'s limits.
pub struct BoundedJson<T>(pub T);

impl<T: Bounded> FromRequest for BoundedJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
            return Box::pin(async { Err(ApiError::Misconfigured("AppState is not registered")) });
        };
        let is_json = req.mime_type().ok().flatten().is_some_and(|m| {
            m.type_() == mime::APPLICATION
                && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON))
        });
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            let server = &state.server;
            if !is_json {
                return Err(ApiError::NotJson);
            }
            let limit = T::max_bytes(server);
            if declared.is_some_and(|n| n > limit) {
                return Err(ApiError::BodyTooLarge { limit });
            }
            let read = async {
                let mut body = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
                while let Some(chunk) = payload.next().await {
                    let chunk = chunk.map_err(|e| ApiError::MalformedJson(e.to_string()))?;
                    if body.len() + chunk.len() > limit {
                        return Err(ApiError::BodyTooLarge { limit });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(body)
            };
            let timeout = server.body_timeout();
            let body = tokio::time::timeout(timeout, read)
                .await
                .map_err(|_| ApiError::BodyTimeout(timeout.as_millis() as u64))??;
            json_limits::check(&body, &T::limits(server)).map_err(|e| match e {
                JsonLimitError::Syntax(e) => ApiError::MalformedJson(e.to_string()),
                JsonLimitError::TooManyItems { max, .. } => ApiError::BatchTooLarge { limit: max },
                limit @ (JsonLimitError::TooDeep { .. } | JsonLimitError::TooManyValues { .. }) => {
                    ApiError::JsonTooComplex(limit.to_string())
                }
            })?;
            // Within its limits: now typed, straight from the bytes (parts a body only
            // passes on, such as a write's document, stay text).
            serde_json::from_slice(&body)
                .map(Self)
                .map_err(|e| ApiError::JsonShape(e.to_string()))
        })
    }
}
