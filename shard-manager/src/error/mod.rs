//! Failures of cluster work, each naming the shard and server it happened on, and the
//! rules that decide what a database error means and what is tried again.
//!
//! ## Layout
//! - here: [`ClusterError`], what a request's work on a shard answers when it fails.
//! - [`sqlstate`]: the one table from a SQLSTATE to what the gateway does about it.
//! - [`retry`]: the one retry policy: what is tried again, how often, and what never is.

pub mod retry;
pub mod sqlstate;

pub use retry::{Cause, Retry};
pub use sqlstate::Decision;

use crate::routing::{Role, ShardId};

/// What went wrong while doing a request's work on a shard.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// The server did not accept or keep a connection: down, restarting, unreachable.
    #[error("{shard} is unavailable: {role} {server} did not answer ({reason})")]
    Unavailable {
        shard: ShardId,
        role: Role,
        server: String,
        reason: String,
        /// A write was sent before the connection was lost: it may have committed, so
        /// it is never sent again (see `retry`). False when nothing reached the server.
        maybe_committed: bool,
    },
    /// The work did not finish within the configured bound.
    #[error("{shard} timed out: {role} {server} did not finish within {after_ms} ms")]
    Timeout {
        shard: ShardId,
        role: Role,
        server: String,
        after_ms: u64,
    },
    /// Every pooled connection to the server stayed busy for the whole wait.
    #[error("{shard} is saturated: no free connection to {role} {server} within {waited_ms} ms")]
    Saturated {
        shard: ShardId,
        role: Role,
        server: String,
        waited_ms: u64,
    },
    /// `x-durability: replica` asked for a replica to apply the write, and none did in
    /// time. The write itself is committed on the primary.
    #[error("{shard} committed the write (lsn {lsn}) on its primary, but no replica applied it within {waited_ms} ms")]
    NotReplicated {
        shard: ShardId,
        lsn: String,
        waited_ms: u64,
    },
    /// The write committed, but the caches could not be told: Redis failed, then so did
    /// raising the shard's cache epoch (its primary stopped answering right after the
    /// commit). Answered instead of an acknowledgement, which would promise that no
    /// gateway serves the previous version (see `cache`).
    #[error("{shard} committed the write (lsn {lsn}) on its primary, but the caches could not be told (Redis failed, then raising the shard's cache epoch failed): eventual reads through other gateways may return the previous version until this gateway raises the epoch (it retries every health check) or their entries expire (cache.ttl_secs)")]
    CacheNotTold { shard: ShardId, lsn: String },
    /// The shard's database lacks migrations: nothing can be stored or read there until
    /// `shard-admin migrate` has run. `missing` is empty when the server answered
    /// that the records table does not exist before a check could list what is missing.
    #[error(
        "{shard} ({server}) lacks its schema: {}; run `shard-admin migrate` (or ./setup.sh run), which applies every migration on every primary",
        missing_text(.missing)
    )]
    SchemaMissing {
        shard: ShardId,
        server: String,
        missing: Vec<String>,
    },
    /// The shard refused the key's slot: by its own record it does not own it (the map
    /// moved on; `told` is the map version the shard was last told). Nothing was
    /// written or read. The gateway reloads its map and retries once before answering
    /// with this.
    #[error("{shard} ({server}) does not own slot {slots} (it goes by map v{told}), and reloading the gateway's map did not route the key elsewhere; the slot may be changing hands: retry shortly")]
    NotOwner {
        shard: ShardId,
        server: String,
        slots: String,
        told: u64,
    },
    /// The request's idempotency key was used before for another request (another
    /// body, table, key or operation): nothing was written. The client's mistake (422).
    #[error("this Idempotency-Key was already used for a different request (another body, table, shard key, id or operation); nothing was written: send a new key for a new request")]
    KeyReused { shard: ShardId },
    /// A conditional write or delete found the record at another version than it
    /// expected (`current`; 0: the record does not exist): nothing was written. The
    /// client's condition, not a fault (412).
    #[error("the record is at version {current}, which the request's condition does not name; nothing was written")]
    PreconditionFailed { shard: ShardId, current: i64 },
    /// A row came back that the gateway cannot decode (a value set in SQL with no JSON
    /// form, such as a timestamp of `infinity`). The data is at fault, not the server:
    /// it is neither marked down nor banned, and retrying will not help until the row
    /// is fixed. `what` names the record and column.
    #[error("{shard} ({role} {server}) holds a row the gateway cannot decode: {what}; the server is fine, the row must be fixed in SQL")]
    Undecodable {
        shard: ShardId,
        role: Role,
        server: String,
        what: String,
    },
    /// The server is up but read-only (SQLSTATE 25006): the shard's configured primary
    /// was demoted to a standby. Nothing was written. Told apart from a server that is
    /// down, so that failover can find the new primary rather than wait for this one.
    #[error("{shard} cannot take writes: {server}, its primary, is read-only (demoted to a standby?); nothing was written")]
    ReadOnly { shard: ShardId, server: String },
    /// A statement failed for a reason that is the server's or ours, not the client's:
    /// the server's refusal, with its SQLSTATE and which statement it refused.
    #[error("query failed on {shard} ({role} {server}): the {statement} statement was refused with SQLSTATE {sqlstate}: {message}")]
    Query {
        shard: ShardId,
        role: Role,
        server: String,
        /// The refusal's SQLSTATE (five characters).
        sqlstate: String,
        /// Which statement: `upsert`, `find`, `list`, `delete`, `claim`, ...
        statement: &'static str,
        /// The server's message, as it wrote it (in its `lc_messages` language): shown,
        /// never decided on.
        message: String,
    },
    /// The shard refused the record's own data (a value too large for an index, a number
    /// out of range, a check the table makes; see `sqlstate::Decision::DataRefused`):
    /// nothing was written, and the same record will be refused again.
    #[error("{shard} refused the record's data (SQLSTATE {sqlstate}, {statement} statement): {message}; nothing was written")]
    DataRefused {
        shard: ShardId,
        sqlstate: String,
        /// Which statement: `upsert`, `upsert_many`, ...
        statement: &'static str,
        /// The server's message, as it wrote it: shown, never decided on.
        message: String,
    },
    /// Rolled back for a concurrent transaction (deadlock, serialization failure, or a
    /// lock not granted within `lock_timeout`): nothing was written; retrying may work.
    #[error("{shard} ({server}) rolled the work back for a concurrent transaction (SQLSTATE {sqlstate}): nothing was written; retry it")]
    Conflict {
        shard: ShardId,
        server: String,
        sqlstate: String,
    },
}

impl ClusterError {
    /// The shard the failure belongs to.
    pub fn shard(&self) -> ShardId {
        match self {
            Self::Unavailable { shard, .. }
            | Self::Timeout { shard, .. }
            | Self::Saturated { shard, .. }
            | Self::NotReplicated { shard, .. }
            | Self::CacheNotTold { shard, .. }
            | Self::SchemaMissing { shard, .. }
            | Self::NotOwner { shard, .. }
            | Self::KeyReused { shard }
            | Self::PreconditionFailed { shard, .. }
            | Self::Undecodable { shard, .. }
            | Self::ReadOnly { shard, .. }
            | Self::Query { shard, .. }
            | Self::DataRefused { shard, .. }
            | Self::Conflict { shard, .. } => *shard,
        }
    }

    /// When the shard refused the slot: the map version the shard goes by, which a
    /// reload must reach.
    pub fn refused_at(&self) -> Option<crate::routing::MapVersion> {
        match self {
            Self::NotOwner { told, .. } => Some(crate::routing::MapVersion(*told)),
            _ => None,
        }
    }

    /// The primary that could not take the work when nothing reached it (down, or
    /// read-only after a demotion), and why, as far as retrying goes: a failover may
    /// bring a primary that can.
    pub fn primary_lost(&self) -> Option<(ShardId, &str, crate::error::retry::Cause)> {
        use crate::error::retry::Cause;
        match self {
            Self::Unavailable {
                shard,
                role: Role::Primary,
                server,
                maybe_committed: false,
                ..
            } if !server.is_empty() => Some((*shard, server, Cause::PrimaryDown)),
            Self::ReadOnly { shard, server } => Some((*shard, server, Cause::ReadOnly)),
            _ => None,
        }
    }

    /// The primary whose connection was lost after the work was sent to it: the work
    /// may have committed there.
    pub fn primary_lost_after_send(&self) -> Option<(ShardId, &str)> {
        match self {
            Self::Unavailable {
                shard,
                role: Role::Primary,
                server,
                maybe_committed: true,
                ..
            } if !server.is_empty() => Some((*shard, server)),
            _ => None,
        }
    }

    /// Marks a write's failure as one that may have committed (it was sent).
    pub fn sent(mut self) -> Self {
        if let Self::Unavailable {
            maybe_committed, ..
        } = &mut self
        {
            *maybe_committed = true;
        }
        self
    }

    /// True when another server of the shard might still do the work.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// The SQLSTATE of a server's refusal, when the failure was one.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Self::Query { sqlstate, .. }
            | Self::DataRefused { sqlstate, .. }
            | Self::Conflict { sqlstate, .. } => Some(sqlstate),
            Self::ReadOnly { .. } => Some(sqlstate::READ_ONLY_SQL_TRANSACTION),
            Self::NotOwner { .. } => Some(sqlstate::SLOT_NOT_OWNED),
            _ => None,
        }
    }

    /// The class of the failure, as OpenTelemetry's `error.type` names it on a
    /// database client span: the SQLSTATE of a server's refusal (as
    /// `db.response.status_code`), else what went wrong, in a few stable words.
    pub fn error_type(&self) -> &str {
        if let Some(code) = self.sqlstate() {
            return code;
        }
        match self {
            Self::Unavailable { .. } => "unavailable",
            Self::Timeout { .. } => "timeout",
            Self::Saturated { .. } => "saturated",
            Self::NotReplicated { .. } => "not_replicated",
            Self::CacheNotTold { .. } => "cache_not_told",
            Self::SchemaMissing { .. } => "schema_missing",
            Self::KeyReused { .. } => "key_reused",
            Self::PreconditionFailed { .. } => "precondition_failed",
            Self::Undecodable { .. } => "undecodable",
            Self::ReadOnly { .. }
            | Self::NotOwner { .. }
            | Self::Query { .. }
            | Self::DataRefused { .. }
            | Self::Conflict { .. } => "refused",
        }
    }

    /// True when the server was too busy to take the work: a read may try another.
    pub fn is_saturated(&self) -> bool {
        matches!(self, Self::Saturated { .. })
    }
}

fn missing_text(missing: &[String]) -> String {
    if missing.is_empty() {
        "the records table does not exist (migrations not applied)".into()
    } else {
        format!("migration(s) {} not applied", missing.join(", "))
    }
}
