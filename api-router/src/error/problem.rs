//! The answer an [`ApiError`] becomes: a problem+json body ([`Problem`]) with what the
//! client may read (facts for its own mistakes and for unavailable shards, nothing
//! internal for ours), the headers some answers carry (`Allow`, `WWW-Authenticate`,
//! `Retry-After`, `ETag`), the note the analytics middleware reads ([`ErrorNote`]),
//! and the whole cause chain in the logs for a server-side failure.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use analytics::recording::ErrorClass;
use serde::Serialize;
use shard_manager::cluster::bulk::BulkFailure;
use shard_manager::cluster::txn::TxnError;
use shard_manager::ClusterError;

use super::api_error::ApiError;
use crate::limits::exports::EXPORTS_BUSY_RETRY_SECS;
use crate::server::headers::{ETAG, IDEMPOTENCY_KEY, IF_MATCH, SHARD_KEY};
use crate::server::request_id;

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
    /// A write answered without knowing whether it applied (see
    /// [`ApiError::may_have_committed`]).
    pub may_have_committed: bool,
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

    /// Whether the answer leaves the client not knowing if its write applied: a write
    /// sent, then its connection lost, and not sent again (it had no key), or a
    /// transaction whose outcome the gateway could not learn.
    pub fn may_have_committed(&self) -> bool {
        matches!(
            self,
            Self::Cluster(ClusterError::Unavailable {
                maybe_committed: true,
                ..
            }) | Self::Transaction(TxnError::InDoubt { .. })
        )
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

    /// The problem+json body this error answers with; also what a stream that fails
    /// part-way (an export's last line, a change stream's `error` event) carries.
    pub fn problem(&self) -> Problem {
        let (status, slug, title) = self.kind();
        Problem {
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
        let status = self.kind().0;
        if status.is_server_error() {
            tracing::error!(error = ?cause_chain(self), status = status.as_u16(), "request failed");
        } else {
            tracing::info!(error = %self, status = status.as_u16(), "client error");
        }
        let problem = self.problem();
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
            may_have_committed: self.may_have_committed(),
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
    use crate::server::headers::HeaderError;

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
    fn a_write_lost_on_the_wire_is_answered_as_in_doubt() {
        let lost = |maybe_committed| {
            ApiError::Cluster(ClusterError::Unavailable {
                shard: shard_manager::ShardId(1),
                role: shard_manager::Role::Primary,
                server: "127.0.0.1:25433".into(),
                reason: "connection closed".into(),
                maybe_committed,
            })
        };
        assert_eq!(lost(true).kind().1, "may-have-committed");
        assert!(lost(true).may_have_committed());
        assert_eq!(lost(false).kind().1, "shard-unavailable");
        assert!(!lost(false).may_have_committed());
        assert_eq!(lost(true).shard(), Some(1));
    }

    #[test]
    fn header_problems_name_the_header() {
        let err = ApiError::from(HeaderError::new("x-durability", "\"maybe\" is not valid"));
        assert_eq!(err.header(), Some("x-durability"));
        assert_eq!(err.kind().1, "invalid-header");
        assert_eq!(ApiError::MissingShardKey.header(), Some("x-shard-key"));
    }
}
