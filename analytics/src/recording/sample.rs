//! What the gateway tells the recorder about one request or cache lookup.
//!
//! These types carry no database or HTTP types on purpose: the gateway translates its
//! own errors into an [`ErrorClass`] once, at the edge, and analytics stays reusable.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One finished HTTP request, borrowed from the handler so recording allocates nothing.
#[derive(Debug, Clone, Copy)]
pub struct RequestSample<'a> {
    /// Route pattern (`"/api/write"`), never the raw path, so ids in URLs do not
    /// become labels; unknown routes come as `"other"`.
    pub endpoint: &'a str,
    /// HTTP method; it also decides whether a sharded request counts as a read or a
    /// write (see [`OpKind::from_method`]).
    pub method: &'a str,
    /// Status code sent to the client; classifies the outcome when `error` is `None`.
    pub status: u16,
    /// Time from request start to response, as the client would see it.
    pub latency: Duration,
    /// Shard the request was routed to, if it reached the routing step.
    pub shard: Option<u32>,
    /// Which copy of the data answered, so operators can see replica and cache offload.
    pub served_by: Option<ServedBy>,
    /// Rows the request inserted, updated or deleted.
    pub rows_written: u64,
    /// Rows the request returned.
    pub rows_read: u64,
    /// Why the request failed, when it did; `None` with a 4xx/5xx status still counts
    /// as an error (client or internal).
    pub error: Option<ErrorInfo<'a>>,
    /// The trace the request was recorded under, when the gateway exports traces and
    /// sampled it: shown beside it among the errors and the slowest requests.
    pub trace_id: Option<&'a str>,
}

/// Which copy of the data served a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServedBy {
    /// The shard's primary: every write and every strongly consistent read.
    Primary,
    /// A streaming replica: eventually consistent reads.
    Replica,
    /// The Redis read cache: no database round trip at all.
    Cache,
}

/// The failure of one request, in words fit for an operator's screen.
#[derive(Debug, Clone, Copy)]
pub struct ErrorInfo<'a> {
    /// Who is to blame, which decides how the error is counted and alerted on.
    pub class: ErrorClass,
    /// Short human text; it is truncated and stripped of control characters before
    /// it is stored. Callers must not pass request bodies or credentials.
    pub message: &'a str,
}

/// Coarse cause of a failed request: the classes an operator alerts on differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The client sent something wrong (4xx): not the gateway's fault, but a spike
    /// usually means a broken client release.
    Client,
    /// The shard's database could not be reached or refused the request.
    ShardUnavailable,
    /// A deadline passed before the shard answered.
    Timeout,
    /// A bug or unexpected state in the gateway itself.
    Internal,
}

impl ErrorClass {
    /// Every class, in the order used for counters and labels.
    pub const ALL: [ErrorClass; 4] = [
        ErrorClass::Client,
        ErrorClass::ShardUnavailable,
        ErrorClass::Timeout,
        ErrorClass::Internal,
    ];

    /// The label value used in JSON and Prometheus output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Client => "client",
            ErrorClass::ShardUnavailable => "shard_unavailable",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Internal => "internal",
        }
    }

    /// Position in [`ErrorClass::ALL`], for fixed-size counter arrays.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// What happened on one cache interaction, counted separately from requests because
/// one request may touch the cache several times (lookup, then invalidation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CacheEvent {
    /// The value was in Redis.
    Hit,
    /// The value was not in Redis and was read from a database.
    Miss,
    /// The request skipped the cache (e.g. strong consistency asked for).
    Bypass,
    /// A write removed a cached value.
    Invalidation,
    /// Redis failed; the request fell back to the database.
    Error,
}

impl CacheEvent {
    /// Every event, in the order used for counters and labels.
    pub const ALL: [CacheEvent; 5] = [
        CacheEvent::Hit,
        CacheEvent::Miss,
        CacheEvent::Bypass,
        CacheEvent::Invalidation,
        CacheEvent::Error,
    ];

    /// The label value used in Prometheus output.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheEvent::Hit => "hit",
            CacheEvent::Miss => "miss",
            CacheEvent::Bypass => "bypass",
            CacheEvent::Invalidation => "invalidation",
            CacheEvent::Error => "error",
        }
    }

    /// Position in [`CacheEvent::ALL`], for fixed-size counter arrays.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Whether a sharded request read or changed data, for the per-shard read/write split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// The request only returned data.
    Read,
    /// The request inserted, updated or deleted data.
    Write,
}

impl OpKind {
    /// Derives the kind from the HTTP method. The gateway's read endpoint is
    /// `GET /api/read` and its writes are `POST /api/write`, `POST /api/bulk-write` and
    /// `DELETE /api/delete`, so safe methods (GET, HEAD, OPTIONS) are reads and
    /// everything else is a write. Deciding here keeps [`RequestSample`] free of a
    /// field the caller could contradict.
    pub fn from_method(method: &str) -> Self {
        let safe = ["GET", "HEAD", "OPTIONS"];
        if safe.iter().any(|m| m.eq_ignore_ascii_case(method)) {
            OpKind::Read
        } else {
            OpKind::Write
        }
    }
}

impl RequestSample<'_> {
    /// The error class this request counts under, or `None` for a success. An explicit
    /// [`ErrorInfo`] wins; otherwise 4xx is [`ErrorClass::Client`] and 5xx is
    /// [`ErrorClass::Internal`].
    pub fn error_class(&self) -> Option<ErrorClass> {
        match (self.error, self.status) {
            (Some(info), _) => Some(info.class),
            (None, 400..=499) => Some(ErrorClass::Client),
            (None, 500..) => Some(ErrorClass::Internal),
            (None, _) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(status: u16, error: Option<ErrorInfo<'_>>) -> RequestSample<'_> {
        RequestSample {
            endpoint: "/api/read",
            method: "GET",
            status,
            latency: Duration::from_millis(1),
            shard: Some(0),
            served_by: Some(ServedBy::Replica),
            rows_written: 0,
            rows_read: 1,
            error,
            trace_id: None,
        }
    }

    #[test]
    fn status_classifies_errors_without_error_info() {
        assert_eq!(sample(200, None).error_class(), None);
        assert_eq!(sample(404, None).error_class(), Some(ErrorClass::Client));
        assert_eq!(sample(503, None).error_class(), Some(ErrorClass::Internal));
    }

    #[test]
    fn explicit_error_info_wins_over_status() {
        let info = ErrorInfo {
            class: ErrorClass::ShardUnavailable,
            message: "connection refused",
        };
        assert_eq!(
            sample(503, Some(info)).error_class(),
            Some(ErrorClass::ShardUnavailable)
        );
    }

    #[test]
    fn safe_methods_are_reads() {
        assert_eq!(OpKind::from_method("GET"), OpKind::Read);
        assert_eq!(OpKind::from_method("head"), OpKind::Read);
        assert_eq!(OpKind::from_method("POST"), OpKind::Write);
        assert_eq!(OpKind::from_method("DELETE"), OpKind::Write);
    }
}
