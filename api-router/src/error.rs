//! The one mapping of failures to HTTP: every error becomes
//! `application/problem+json` (RFC 9457) with status, title, detail and request id.

use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use analytics::ErrorClass;
use serde::Serialize;
use shard_manager::bulk::BulkFailure;
use shard_manager::key::{ConsistencyError, KeyError};
use shard_manager::lsn::TokenError;
use shard_manager::router::RouteError;
use shard_manager::{ClusterError, RecordError, UnknownTable};

use crate::request_id;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the x-shard-key header is required")]
    MissingShardKey,
    #[error("invalid x-shard-key header: {0}")]
    BadShardKey(String),
    #[error(transparent)]
    ShardKey(#[from] KeyError),
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error(transparent)]
    UnknownTable(#[from] UnknownTable),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Consistency(#[from] ConsistencyError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("malformed JSON body: {0}")]
    MalformedJson(String),
    #[error("the JSON body does not have the expected shape: {0}")]
    JsonShape(String),
    #[error("the body must be JSON (Content-Type: application/json)")]
    NotJson,
    #[error("the body is larger than the {limit} bytes allowed")]
    BodyTooLarge { limit: usize },
    #[error("the batch has {count} records; at most {limit} are allowed per request")]
    BatchTooLarge { count: usize, limit: usize },
    #[error("invalid query: {0}")]
    BadQuery(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("no record {id:?} in table {table:?} for this shard key")]
    RecordNotFound { table: String, id: String },
    #[error("no route for {method} {path}")]
    RouteNotFound { method: String, path: String },
    #[error("{method} is not allowed on {path}; use {allowed}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: &'static str,
    },
    #[error("no record in the batch was written")]
    BatchRejected {
        status: StatusCode,
        failed: Vec<BulkFailure>,
    },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("not every shard answered and x-require-all-shards is set: {}", .0.join("; "))]
    ShardsMissing(Vec<String>),
    #[error("the request did not finish within {0} ms")]
    RequestTimeout(u64),
}

/// The problem+json body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URN naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request's id, also in the `x-request-id` response header and the logs.
    pub request_id: Option<String>,
    /// The shard involved, for server-side failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
    /// For bulk writes: each record not written, with its index and reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<Vec<BulkFailure>>,
}

/// Put on error responses so the analytics middleware can classify and describe them.
#[derive(Debug, Clone)]
pub struct ErrorNote {
    pub class: ErrorClass,
    pub message: String,
    pub shard: Option<u32>,
}

impl ApiError {
    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            Self::MissingShardKey => ("missing-shard-key", "Missing shard key"),
            Self::BadShardKey(_) | Self::ShardKey(_) | Self::Route(_) => {
                ("invalid-shard-key", "Invalid shard key")
            }
            Self::UnknownTable(_) => ("unknown-table", "Unknown table"),
            Self::Record(_) | Self::Unprocessable(_) => ("invalid-record", "Invalid record"),
            Self::Consistency(_) => ("invalid-consistency", "Invalid consistency"),
            Self::Token(_) => ("invalid-token", "Invalid read-your-writes token"),
            Self::MalformedJson(_) => ("malformed-json", "Malformed JSON"),
            Self::JsonShape(_) => ("invalid-body", "Invalid request body"),
            Self::NotJson => ("unsupported-media-type", "Unsupported media type"),
            Self::BodyTooLarge { .. } => ("body-too-large", "Body too large"),
            Self::BatchTooLarge { .. } => ("batch-too-large", "Batch too large"),
            Self::BadQuery(_) => ("invalid-query", "Invalid query"),
            Self::RecordNotFound { .. } => ("record-not-found", "Record not found"),
            Self::RouteNotFound { .. } => ("route-not-found", "Not found"),
            Self::MethodNotAllowed { .. } => ("method-not-allowed", "Method not allowed"),
            Self::ShardsMissing(_) => ("shard-unavailable", "Shard unavailable"),
            Self::BatchRejected { .. } => ("batch-rejected", "Batch not written"),
            Self::Cluster(ClusterError::Unavailable { .. }) => {
                ("shard-unavailable", "Shard unavailable")
            }
            Self::Cluster(ClusterError::Saturated { .. }) => ("shard-saturated", "Shard saturated"),
            Self::Cluster(ClusterError::Timeout { .. }) | Self::RequestTimeout(_) => {
                ("timeout", "Timed out")
            }
            Self::Cluster(ClusterError::NotReplicated { .. }) => {
                ("not-replicated", "Not replicated in time")
            }
            Self::Cluster(ClusterError::Query { .. }) => ("internal", "Internal error"),
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Cluster(ClusterError::Unavailable { .. } | ClusterError::Saturated { .. }) => {
                ErrorClass::ShardUnavailable
            }
            Self::ShardsMissing(_) => ErrorClass::ShardUnavailable,
            Self::BatchRejected { status, .. } if status.is_server_error() => {
                ErrorClass::ShardUnavailable
            }
            Self::Cluster(ClusterError::Timeout { .. } | ClusterError::NotReplicated { .. })
            | Self::RequestTimeout(_) => ErrorClass::Timeout,
            Self::Cluster(ClusterError::Query { .. }) => ErrorClass::Internal,
            _ => ErrorClass::Client,
        }
    }

    /// What the client may read: facts for its own mistakes and for unavailable
    /// shards, nothing internal for our failures.
    fn detail(&self) -> String {
        match self {
            Self::Cluster(e @ ClusterError::Query { .. }) => {
                format!(
                    "an internal error occurred on {}; it has been logged",
                    e.shard()
                )
            }
            Self::BatchRejected { failed, .. } => {
                format!(
                    "none of the {} records was written; see `failed`",
                    failed.len()
                )
            }
            other => other.to_string(),
        }
    }

    fn shard(&self) -> Option<u32> {
        match self {
            Self::Cluster(e) => Some(e.shard().0),
            _ => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MissingShardKey
            | Self::BadShardKey(_)
            | Self::ShardKey(_)
            | Self::Route(_)
            | Self::Consistency(_)
            | Self::Token(_)
            | Self::MalformedJson(_)
            | Self::BadQuery(_) => StatusCode::BAD_REQUEST,
            Self::UnknownTable(_)
            | Self::Record(_)
            | Self::JsonShape(_)
            | Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyTooLarge { .. } | Self::BatchTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RecordNotFound { .. } | Self::RouteNotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::ShardsMissing(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::BatchRejected { status, .. } => *status,
            Self::Cluster(ClusterError::Unavailable { .. } | ClusterError::Saturated { .. }) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Cluster(ClusterError::Timeout { .. } | ClusterError::NotReplicated { .. })
            | Self::RequestTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Cluster(ClusterError::Query { .. }) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let (slug, title) = self.slug_and_title();
        if status.is_server_error() {
            tracing::error!(error = ?cause_chain(self), status = status.as_u16(), "request failed");
        } else {
            tracing::info!(error = %self, status = status.as_u16(), "client error");
        }
        let problem = Problem {
            kind: format!("urn:shardgate:problem:{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.detail(),
            request_id: request_id::current(),
            shard: self.shard(),
            failed: match self {
                Self::BatchRejected { failed, .. } => Some(failed.clone()),
                _ => None,
            },
        };
        let mut res = HttpResponse::build(status);
        res.content_type("application/problem+json");
        if let Self::MethodNotAllowed { allowed, .. } = self {
            res.insert_header((header::ALLOW, *allowed));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.insert_header((header::RETRY_AFTER, "1"));
        }
        let mut res = res.json(problem);
        res.extensions_mut().insert(ErrorNote {
            class: self.class(),
            message: self.detail(),
            shard: self.shard(),
        });
        res
    }
}

/// The whole `source()` chain, for logs.
fn cause_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

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
