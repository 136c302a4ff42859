//! actix's extractor failures (a JSON body, a query string) mapped to our problems.

use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::HttpRequest;

use super::api_error::ApiError;

/// Maps actix's JSON extractor failures to our problems.
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match err {
        JsonPayloadError::OverflowKnownLength { limit, .. }
        | JsonPayloadError::Overflow { limit } => ApiError::BodyTooLarge { limit },
        JsonPayloadError::ContentType => ApiError::NotJson,
        JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::JsonShape(e.to_string()),
        JsonPayloadError::Deserialize(e) => ApiError::MalformedJson(e.to_string()),
        other => ApiError::MalformedJson(other.to_string()),
    };
    api.into()
}

/// Maps actix's query-string extractor failures to our problems.
pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::BadQuery(match err {
        QueryPayloadError::Deserialize(e) => e.to_string(),
        other => other.to_string(),
    })
    .into()
}
