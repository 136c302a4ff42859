//! [`ApiError`]: everything a request can fail with, one variant a failure, and the
//! conversions from the errors of the crates below (a transaction's, a query's, an
//! export's).

use actix_web::http::StatusCode;
use shard_manager::cluster::bulk::BulkFailure;
use shard_manager::cluster::txn::TxnError;
use shard_manager::export::ExportError;
use shard_manager::store::query::QueryError;
use shard_manager::store::NoIdSecret;
use shard_manager::wal::ConsistencyError;
use shard_manager::{ClusterError, RecordError, UnknownTable};

use crate::access::bearer::BearerError;
use crate::limits::{ExportsBusy, Limited};
use crate::server::headers::HeaderError;

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
    /// A change stream's cursor is older than its shards' change logs retain (410).
    #[error("{0}")]
    ChangesGone(String),
    /// A change stream's `after` or `Last-Event-ID` is not a cursor (400, naming it).
    #[error("{0}")]
    BadChangeCursor(String),
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
