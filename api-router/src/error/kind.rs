//! The one mapping from an [`ApiError`] to its status, problem slug
//! (`urn:shardgate:problem:<slug>`) and title: every variant once.

use actix_web::http::StatusCode;
use control_plane::indexes::IndexError;
use shard_manager::cluster::txn::TxnError;
use shard_manager::ClusterError;

use super::api_error::ApiError;
use crate::limits::Limited;

/// A variant's status, problem slug (`urn:shardgate:problem:<slug>`) and title.
pub type Kind = (StatusCode, &'static str, &'static str);

impl ApiError {
    /// The one mapping: every variant once.
    pub fn kind(&self) -> Kind {
        use StatusCode as S;
        match self {
            Self::MissingShardKey => (S::BAD_REQUEST, "missing-shard-key", "Missing shard key"),
            Self::BadHeader(_) => (S::BAD_REQUEST, "invalid-header", "Invalid header"),
            Self::UnknownTable(_) => (S::UNPROCESSABLE_ENTITY, "unknown-table", "Unknown table"),
            Self::NoSuchTable(_) => (S::NOT_FOUND, "unknown-table", "Unknown table"),
            Self::ExportStopped(_) => (S::SERVICE_UNAVAILABLE, "export-stopped", "Export stopped"),
            Self::Record(_) | Self::Unprocessable(_) => {
                (S::UNPROCESSABLE_ENTITY, "invalid-record", "Invalid record")
            }
            Self::Consistency(_) => (S::BAD_REQUEST, "invalid-consistency", "Invalid consistency"),
            Self::MalformedJson(_) => (S::BAD_REQUEST, "malformed-json", "Malformed JSON"),
            Self::JsonShape(_) => (
                S::UNPROCESSABLE_ENTITY,
                "invalid-body",
                "Invalid request body",
            ),
            Self::NotJson => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            Self::BodyTooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "body-too-large", "Body too large"),
            Self::BatchTooLarge { .. } => {
                (S::PAYLOAD_TOO_LARGE, "batch-too-large", "Batch too large")
            }
            Self::JsonTooComplex(_) => {
                (S::PAYLOAD_TOO_LARGE, "body-too-complex", "Body too complex")
            }
            Self::BodyTimeout(_) => (S::REQUEST_TIMEOUT, "body-timeout", "Body timeout"),
            Self::BadQuery(_) => (S::BAD_REQUEST, "invalid-query", "Invalid query"),
            Self::BadIndex(_) => (S::BAD_REQUEST, "invalid-index", "Invalid index"),
            Self::Index(IndexError::Exists { .. }) => {
                (S::CONFLICT, "index-name-taken", "Index name taken")
            }
            Self::Index(IndexError::TooMany { .. }) => (
                S::UNPROCESSABLE_ENTITY,
                "too-many-indexes",
                "Too many indexes",
            ),
            Self::Index(IndexError::Dropping(_)) => {
                (S::CONFLICT, "index-dropping", "Index being dropped")
            }
            Self::Index(IndexError::NoSuchIndex(_)) => {
                (S::NOT_FOUND, "index-not-found", "Index not found")
            }
            Self::Index(_) => (
                S::SERVICE_UNAVAILABLE,
                "index-work-unavailable",
                "Index work unavailable",
            ),
            Self::RecordNotFound { .. } => (S::NOT_FOUND, "record-not-found", "Record not found"),
            Self::RouteNotFound { .. } => (S::NOT_FOUND, "route-not-found", "Not found"),
            Self::MisdirectedHost(_) => (
                S::MISDIRECTED_REQUEST,
                "misdirected-request",
                "Misdirected request",
            ),
            Self::Unauthenticated(_) => (S::UNAUTHORIZED, "unauthenticated", "Unauthenticated"),
            Self::Forbidden(_) => (S::FORBIDDEN, "forbidden", "Forbidden"),
            Self::ProtectedMode => (S::FORBIDDEN, "protected-mode", "Protected mode"),
            Self::CorsRefused(_) => (S::FORBIDDEN, "cors-refused", "Cross-origin request refused"),
            Self::Limited(Limited::Rate { .. }) => {
                (S::TOO_MANY_REQUESTS, "rate-limited", "Rate limited")
            }
            Self::Limited(Limited::Concurrency { .. }) => (
                S::TOO_MANY_REQUESTS,
                "concurrency-limited",
                "Too many queries at once",
            ),
            Self::KeysUnavailable => (
                S::SERVICE_UNAVAILABLE,
                "keys-unavailable",
                "Keys not loaded",
            ),
            Self::NoIdSecret(_) => (
                S::SERVICE_UNAVAILABLE,
                "record-id-unavailable",
                "Record id unavailable",
            ),
            Self::Draining => (S::SERVICE_UNAVAILABLE, "draining", "Draining"),
            Self::ExportsBusy(_) => (
                S::SERVICE_UNAVAILABLE,
                "exports-busy",
                "Too many exports at once",
            ),
            Self::MethodNotAllowed { .. } => (
                S::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            Self::BatchRejected { status, .. } => (*status, "batch-rejected", "Batch not written"),
            Self::EmptyTransaction => (
                S::UNPROCESSABLE_ENTITY,
                "empty-transaction",
                "Empty transaction",
            ),
            Self::TooManyOperations { .. } => (
                S::PAYLOAD_TOO_LARGE,
                "too-many-operations",
                "Too many operations",
            ),
            Self::NoReads => (S::UNPROCESSABLE_ENTITY, "no-reads", "No reads"),
            Self::TooManyReads { .. } => (S::PAYLOAD_TOO_LARGE, "too-many-reads", "Too many reads"),
            Self::Read { .. } => (S::UNPROCESSABLE_ENTITY, "invalid-read", "Invalid read"),
            Self::ReadBudget { .. } => (
                S::PAYLOAD_TOO_LARGE,
                "read-budget",
                "Answer over the read budget",
            ),
            Self::SnapshotExpired(_) => (S::GONE, "snapshot-expired", "Snapshot expired"),
            Self::ChangesGone(_) => (S::GONE, "changes-gone", "Changes no longer kept"),
            Self::BadChangeCursor(_) => (
                S::BAD_REQUEST,
                "invalid-change-cursor",
                "Invalid change cursor",
            ),
            Self::SnapshotsBusy(_) => (
                S::SERVICE_UNAVAILABLE,
                "snapshots-busy",
                "Too many snapshots held",
            ),
            Self::SnapshotsHeld(_) => (
                S::TOO_MANY_REQUESTS,
                "snapshots-held",
                "Snapshots held by this key",
            ),
            Self::SnapshotUnavailable(_) => (
                S::SERVICE_UNAVAILABLE,
                "snapshot-unavailable",
                "Snapshot unavailable",
            ),
            Self::Operation { .. } => (
                S::UNPROCESSABLE_ENTITY,
                "invalid-operation",
                "Invalid operation",
            ),
            Self::Transaction(TxnError::ConditionFailed { .. }) => {
                (S::CONFLICT, "condition-failed", "Condition failed")
            }
            Self::Transaction(TxnError::Shard(ClusterError::Timeout { .. })) => {
                (S::GATEWAY_TIMEOUT, "timeout", "Timed out")
            }
            Self::Cluster(ClusterError::Conflict { .. })
            | Self::Transaction(TxnError::Shard(ClusterError::Conflict { .. })) => (
                S::CONFLICT,
                "concurrent-conflict",
                "Conflict with a concurrent transaction",
            ),
            Self::Transaction(TxnError::Shard(ClusterError::KeyReused { .. })) => (
                S::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency key reused",
            ),
            Self::Transaction(TxnError::PartlyReplayed { .. }) => (
                S::UNPROCESSABLE_ENTITY,
                "idempotency-entries-incomplete",
                "Idempotency entries incomplete",
            ),
            Self::Transaction(TxnError::Shard(ClusterError::DataRefused { .. })) => (
                S::UNPROCESSABLE_ENTITY,
                "data-refused",
                "Record refused by its shard",
            ),
            Self::Transaction(TxnError::Shard(_)) => (
                S::SERVICE_UNAVAILABLE,
                "transaction-not-written",
                "Transaction not written",
            ),
            Self::Transaction(TxnError::LogUnavailable { .. }) => (
                S::SERVICE_UNAVAILABLE,
                "coordinator-log-unavailable",
                "Coordinator log unavailable",
            ),
            Self::Transaction(TxnError::InDoubt { .. }) => (
                S::SERVICE_UNAVAILABLE,
                "transaction-in-doubt",
                "Transaction in doubt",
            ),
            Self::Transaction(TxnError::Committing { .. }) => (
                S::SERVICE_UNAVAILABLE,
                "transaction-committing",
                "Transaction committing",
            ),
            // Sent, then its connection lost, and not sent again (no key): the client
            // must find out whether it applied before it sends it again.
            Self::Cluster(ClusterError::Unavailable {
                maybe_committed: true,
                ..
            }) => (
                S::SERVICE_UNAVAILABLE,
                "may-have-committed",
                "Write may have committed",
            ),
            Self::ShardsMissing(_) | Self::Cluster(ClusterError::Unavailable { .. }) => (
                S::SERVICE_UNAVAILABLE,
                "shard-unavailable",
                "Shard unavailable",
            ),
            Self::Cluster(ClusterError::ReadOnly { .. }) => (
                S::SERVICE_UNAVAILABLE,
                "primary-read-only",
                "Primary read-only",
            ),
            Self::Cluster(ClusterError::Saturated { .. }) => {
                (S::SERVICE_UNAVAILABLE, "shard-saturated", "Shard saturated")
            }
            Self::Cluster(ClusterError::NotOwner { .. }) => (
                S::SERVICE_UNAVAILABLE,
                "slot-not-owned",
                "Slot changing hands",
            ),
            Self::Cluster(ClusterError::SchemaMissing { .. }) => (
                S::SERVICE_UNAVAILABLE,
                "schema-missing",
                "Shard schema missing",
            ),
            Self::Cluster(ClusterError::Timeout { .. }) | Self::RequestTimeout(_) => {
                (S::GATEWAY_TIMEOUT, "timeout", "Timed out")
            }
            Self::Cluster(ClusterError::CacheNotTold { .. }) => (
                S::SERVICE_UNAVAILABLE,
                "cache-not-told",
                "Written; caches not told",
            ),
            Self::Cluster(ClusterError::NotReplicated { .. }) => (
                S::GATEWAY_TIMEOUT,
                "not-replicated",
                "Not replicated in time",
            ),
            // Only a write through `input::conditional` sends a condition, and it
            // answers the refusal as `PreconditionFailed`, with the record's tag.
            Self::PreconditionFailed { .. }
            | Self::Cluster(ClusterError::PreconditionFailed { .. }) => (
                S::PRECONDITION_FAILED,
                "precondition-failed",
                "Precondition failed",
            ),
            Self::Cluster(ClusterError::KeyReused { .. }) => (
                S::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency key reused",
            ),
            // Not 503: the server is fine and a retry gets the same row; the detail
            // names the shard, the record and the column to fix.
            Self::Cluster(ClusterError::Undecodable { .. }) => (
                S::INTERNAL_SERVER_ERROR,
                "undecodable-record",
                "Undecodable record",
            ),
            // The client's record, not the server: the detail names the shard, the
            // SQLSTATE and the server's words (a value too large for an index, ...).
            Self::Cluster(ClusterError::DataRefused { .. }) => (
                S::UNPROCESSABLE_ENTITY,
                "data-refused",
                "Record refused by its shard",
            ),
            Self::Cluster(ClusterError::Query { .. }) | Self::Misconfigured(_) => {
                (S::INTERNAL_SERVER_ERROR, "internal", "Internal error")
            }
        }
    }
}
