//! Why a query is refused: each variant names what the client must change.

use super::MAX_LIMIT;

/// A query a client cannot have meant: each names what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("unknown operator {op:?} on {field:?}; use one of eq, ne, gt, gte, lt, lte, in, nin, exists, prefix, contains")]
    UnknownOperator { field: String, op: String },
    #[error("bad path {path:?}: {reason}")]
    BadPath { path: String, reason: String },
    #[error("`{op}` on {field:?} cannot take {given}: {needs}")]
    Incomparable {
        field: String,
        op: &'static str,
        given: String,
        needs: &'static str,
    },
    #[error("limit is {0}; use a whole number from 1 to {MAX_LIMIT}")]
    Limit(String),
    #[error("{what} has {count} entries; at most {max} are allowed")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
    #[error("`fields` names {0:?} twice")]
    DuplicateField(String),
    #[error("unknown sort order {order:?} on {field:?}; use asc or desc")]
    UnknownOrder { field: String, order: String },
    #[error("unknown count {0:?}; use exact or estimated")]
    UnknownCount(String),
    #[error("invalid cursor; pass back the `next` value of the previous page of the same query unchanged")]
    BadCursor,
}
