//! The one mapping of failures to HTTP: every error becomes
//! `application/problem+json` (RFC 9457) with status, title, detail and request id.
//! Each [`ApiError`] variant is mapped once, in [`ApiError::kind`], to its status, slug
//! and title (`kind`); the analytics class follows from the status. `extractors`: the
//! answers to bodies and queries the extractors refuse.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use analytics::recording::ErrorClass;
use serde::Serialize;
use shard_manager::cluster::bulk::BulkFailure;
use shard_manager::cluster::txn::TxnError;
use shard_manager::export::ExportError;
use shard_manager::store::query::QueryError;
use shard_manager::store::NoIdSecret;
use shard_manager::wal::ConsistencyError;
use shard_manager::{ClusterError, RecordError, UnknownTable};

use crate::access::bearer::BearerError;
use crate::limits::exports::EXPORTS_BUSY_RETRY_SECS;
use crate::limits::{ExportsBusy, Limited};
use crate::server::headers::{HeaderError, ETAG, IDEMPOTENCY_KEY, IF_MATCH, SHARD_KEY};
use crate::server::request_id;

mod extractors;
mod kind;
pub use extractors::{json_error, query_error};
pub use kind::Kind;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the x-shard-key header is required")]
    MissingShardKey,
    /// A header that is present but not what it must be; names the header.
    #[error(transparent)]
    BadHeader(#[from] HeaderError),
    #[error(transparent)]
    UnknownTable(#[from] UnknownTable),
    /// An export of a table that is not configured: the thing asked for does not exist.
    #[error(transparent)]
    NoSuchTable(UnknownTable),
    /// An export that could not start for a reason other than a shard failing: the
    /// map moved while its first pages were read.
    #[error(transparent)]
    ExportStopped(ExportError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Consistency(#[from] ConsistencyError),
    #[error("malformed JSON body: {0}")]
    MalformedJson(String),
    #[error("the JSON body does not have the expected shape: {0}")]
    JsonShape(String),
    #[error("the body must be JSON (Content-Type: application/json)")]
    NotJson,
    #[error("the body is larger than the {limit} bytes allowed")]
    BodyTooLarge { limit: usize },
    #[error("the batch has more than {limit} records; at most {limit} are allowed per request")]
    BatchTooLarge { limit: usize },
    /// Past the depth or value-count limit while parsing.
    #[error("{0}; see the limits in the README")]
    JsonTooComplex(String),
    #[error("the body did not arrive within {0} ms")]
    BodyTimeout(u64),
    #[error("invalid query: {0}")]
    BadQuery(String),
    #[error("{0}")]
    Unprocessable(String),
    /// A conditional write or delete (`If-Match`) found the record at another version
    /// (`current`, 0: absent; `etag`: its tag then): nothing was written (412).
    #[error("the record is at version {current}{}, which If-Match does not name; nothing was written: read it again and send its new ETag", etag.as_ref().map(|t| format!(" (ETag {t})")).unwrap_or_else(|| " (it does not exist)".into()))]
    PreconditionFailed { current: i64, etag: Option<String> },
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
    #[error("`operations` is empty; send at least one operation")]
    EmptyTransaction,
    #[error("operation {limit} is one too many: a transaction carries at most {limit} operations (server.max_transaction_operations)")]
    TooManyOperations { limit: usize },
    /// One operation of a transaction is at fault; nothing was written.
    #[error("operation {index}: {reason}; nothing was written")]
    Operation { index: usize, reason: String },
    /// A transaction did not commit (or is not known to have yet).
    #[error(transparent)]
    Transaction(TxnError),
    #[error("`reads` is empty; send at least one read")]
    NoReads,
    #[error("read {limit} is one too many: a read-many carries at most {limit} reads")]
    TooManyReads { limit: usize },
    /// One read of a read-many is at fault.
    #[error("read {index}: {reason}")]
    Read { index: usize, reason: String },
    /// A read-many's records would pass the read budget (413, naming the read).
    #[error("the records these reads find come to more than {max_bytes} bytes (server.max_read_bytes), each counted as often as it is asked; read {index} passed it; ask fewer reads, or each record once, per request")]
    ReadBudget { max_bytes: usize, index: usize },
    /// A snapshot read could not take the cluster fence.
    #[error("{0}")]
    SnapshotUnavailable(String),
    /// A snapshot list's next page after its cut was let go (410, naming the bound).
    #[error("{0}")]
    SnapshotExpired(String),
    /// The gateway holds its most snapshots for next pages (503, naming the limit).
    #[error("{0}")]
    SnapshotsBusy(String),
    /// The caller's key holds its share of the gateway's snapshots for next pages (429,
    /// naming the key and its share).
    #[error("{0}")]
    SnapshotsHeld(String),
    #[error("not every shard answered and x-require-all-shards is set: {}", .0.join("; "))]
    ShardsMissing(Vec<String>),
    #[error("the request did not finish within {0} ms")]
    RequestTimeout(u64),
    #[error("this gateway does not serve the host {0:?}; add it to server.allowed_hosts")]
    MisdirectedHost(String),
    /// No key, a malformed `Authorization`, or a key that is not live: the detail
    /// never says which of the last (unknown, revoked, wrong).
    #[error("{}", .0.detail())]
    Unauthenticated(BearerError),
    /// A live key without the route's scope, or a table it may not use.
    #[error("{0}")]
    Forbidden(String),
    /// A CORS preflight the `[server.cors]` policy does not allow.
    #[error("{0}")]
    CorsRefused(String),
    #[error("this gateway has no API key yet, so it serves loopback clients only (protected mode); create one with `shard-admin keys create --name NAME --scopes read,write` and send it as `Authorization: Bearer <key>`")]
    ProtectedMode,
    /// Over the key's rate or its per-shard concurrency cap (429, naming both).
    #[error(transparent)]
    Limited(#[from] Limited),
    /// The gateway already streams its most exports at once (503, naming the limit).
    #[error(transparent)]
    ExportsBusy(#[from] ExportsBusy),
    #[error("the gateway has not read its API keys yet (the metadata database has not answered since it started), so it serves loopback clients only")]
    KeysUnavailable,
    /// A record sent without an id under an idempotency key, before the gateway has
    /// read the cluster's secret for such ids (503: the metadata database).
    #[error(transparent)]
    NoIdSecret(#[from] NoIdSecret),
    /// A stop signal arrived: the gateway drains (still serving) before it stops.
    #[error("this gateway is draining before it stops: send new requests to another gateway")]
    Draining,
    /// An index asked for with bad fields (400 `invalid-index`, naming it).
    #[error("invalid index: {0}")]
    BadIndex(String),
    /// Index work: an index that exists already (409) or does not (404), or the metadata
    /// database or a primary that did not answer (503).
    #[error(transparent)]
    Index(#[from] control_plane::indexes::IndexError),
    /// The gateway was wired wrongly (a bug, never the client's doing).
    #[error("gateway misconfigured: {0}")]
    Misconfigured(&'static str),
}

impl From<TxnError> for ApiError {
    fn from(err: TxnError) -> Self {
        ApiError::Transaction(err)
    }
}

impl From<QueryError> for ApiError {
    /// Every fault of a query is the client's, named (400 `invalid-query`).
    fn from(e: QueryError) -> Self {
        ApiError::BadQuery(e.to_string())
    }
}

impl From<ExportError> for ApiError {
    /// A shard that failed is answered as any shard failure (503/504 naming it).
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::Shard(e) => Self::Cluster(e),
            other => Self::ExportStopped(other),
        }
    }
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
    /// The shard involved: for server-side failures, and a key's concurrency cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
    /// The request header at fault, for header problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// The SQLSTATE of the shard's refusal, for server-side failures that were one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlstate: Option<String>,
    /// For bulk writes: each record not written, with its index and reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<Vec<BulkFailure>>,
    /// For transactions: the operation at fault, by its index in `operations`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<usize>,
    /// For a failed condition: the record's current version (0: it does not exist).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<i64>,
    /// For a failed `If-Match`: the record's current `ETag` (absent: no record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_etag: Option<String>,
}

/// Put on error responses so the analytics middleware can classify and describe them.
#[derive(Debug, Clone)]
pub struct ErrorNote {
    pub class: ErrorClass,
    pub message: String,
    pub shard: Option<u32>,
}

impl ApiError {
    /// The analytics class, from the status.
    pub fn class(&self) -> ErrorClass {
        match self.kind().0 {
            StatusCode::SERVICE_UNAVAILABLE => ErrorClass::ShardUnavailable,
            StatusCode::GATEWAY_TIMEOUT => ErrorClass::Timeout,
            s if s.is_server_error() => ErrorClass::Internal,
            _ => ErrorClass::Client,
        }
    }

    /// What the client may read: facts for its own mistakes and for unavailable
    /// shards, nothing internal for our failures.
    pub(crate) fn detail(&self) -> String {
        match self {
            Self::Cluster(ClusterError::Query {
                shard,
                statement,
                sqlstate,
                ..
            }) => format!(
                "an internal error occurred on {shard} (its {statement} statement was refused with SQLSTATE {sqlstate}); it has been logged"
            ),
            Self::Misconfigured(_) => "an internal error occurred; it has been logged".into(),
            Self::Index(
                control_plane::indexes::IndexError::Query(_)
                | control_plane::indexes::IndexError::Map(_),
            ) => "the metadata database did not answer index work; it has been logged".into(),
            Self::BatchRejected { failed, .. } => {
                format!(
                    "none of the {} records was written; see `failed`",
                    failed.len()
                )
            }
            other => other.to_string(),
        }
    }

    pub(crate) fn shard(&self) -> Option<u32> {
        match self {
            Self::Cluster(e) => Some(e.shard().0),
            Self::Transaction(e) => Some(e.shard().0),
            Self::ExportStopped(e) => e.shard().map(|s| s.0),
            Self::Limited(l) => l.shard().map(|s| s.0),
            _ => None,
        }
    }

    fn header(&self) -> Option<&'static str> {
        match self {
            Self::MissingShardKey => Some(SHARD_KEY),
            Self::BadHeader(e) => Some(e.header),
            Self::Cluster(ClusterError::KeyReused { .. })
            | Self::Transaction(TxnError::Shard(ClusterError::KeyReused { .. }))
            | Self::Transaction(TxnError::PartlyReplayed { .. }) => Some(IDEMPOTENCY_KEY),
            Self::PreconditionFailed { .. } => Some(IF_MATCH),
            _ => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.kind().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, slug, title) = self.kind();
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
            header: self.header().map(str::to_owned),
            sqlstate: match self {
                Self::Cluster(e) | Self::Transaction(TxnError::Shard(e)) => {
                    e.sqlstate().map(str::to_owned)
                }
                _ => None,
            },
            failed: match self {
                Self::BatchRejected { failed, .. } => Some(failed.clone()),
                _ => None,
            },
            operation: match self {
                Self::Operation { index, .. }
                | Self::Read { index, .. }
                | Self::ReadBudget { index, .. }
                | Self::Transaction(TxnError::ConditionFailed { index, .. }) => Some(*index),
                Self::TooManyOperations { limit } | Self::TooManyReads { limit } => Some(*limit),
                _ => None,
            },
            current_version: match self {
                Self::Transaction(TxnError::ConditionFailed { current, .. })
                | Self::PreconditionFailed { current, .. } => Some(*current),
                _ => None,
            },
            current_etag: match self {
                Self::PreconditionFailed { etag, .. } => etag.clone(),
                _ => None,
            },
        };
        let mut res = HttpResponse::build(status);
        res.content_type("application/problem+json");
        if let Self::MethodNotAllowed { allowed, .. } = self {
            res.insert_header((header::ALLOW, *allowed));
        }
        if status == StatusCode::UNAUTHORIZED {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"shardgate\""));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.insert_header((header::RETRY_AFTER, "1"));
        }
        if let Self::Limited(limited) = self {
            res.insert_header((header::RETRY_AFTER, limited.retry_after_secs()));
        }
        if let Self::PreconditionFailed {
            etag: Some(etag), ..
        } = self
        {
            res.insert_header((ETAG, etag.as_str()));
        }
        if let Self::ExportsBusy(_) = self {
            res.insert_header((header::RETRY_AFTER, EXPORTS_BUSY_RETRY_SECS));
        }
        if let Self::SnapshotsHeld(_) = self {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_the_status() {
        let unavailable = ApiError::ShardsMissing(vec!["shard-1 down".into()]);
        assert_eq!(unavailable.kind().0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(unavailable.class(), ErrorClass::ShardUnavailable);
        assert_eq!(ApiError::RequestTimeout(5).class(), ErrorClass::Timeout);
        assert_eq!(ApiError::MissingShardKey.class(), ErrorClass::Client);
        let rejected = ApiError::BatchRejected {
            status: StatusCode::SERVICE_UNAVAILABLE,
            failed: vec![],
        };
        assert_eq!(rejected.class(), ErrorClass::ShardUnavailable);
    }

    #[test]
    fn header_problems_name_the_header() {
        let err = ApiError::from(HeaderError::new("x-durability", "\"maybe\" is not valid"));
        assert_eq!(err.header(), Some("x-durability"));
        assert_eq!(err.kind().1, "invalid-header");
        assert_eq!(ApiError::MissingShardKey.header(), Some("x-shard-key"));
    }
}
