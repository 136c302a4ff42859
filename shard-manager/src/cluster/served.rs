//! Results together with where they came from: shard, role, server, cache.

use crate::cache::{CacheUsage, CachedRecord};
use crate::error::ClusterError;
use crate::routing::{Role, ShardId};
use crate::servers::Server;
use crate::store::{Cursor, Record, RecordId, Upserted};
use crate::wal::{Lsn, WriteToken};

/// A result together with where it came from.
#[derive(Debug, Clone)]
pub struct Served<T> {
    pub shard: ShardId,
    pub role: Role,
    pub server: String,
    pub value: T,
    /// True when the value came from the Redis cache (then `role`/`server` are unused).
    pub from_cache: bool,
    /// What the cache did, for analytics and the `x-cache` header.
    pub cache: CacheUsage,
    /// A WAL position the server had applied before the read began (0: not known): what
    /// the value is known to reflect. Only positions the server really reported count,
    /// never a client's token, so a forged token cannot vouch for a stale entry.
    pub seen_at: Lsn,
}

/// A record a point read found.
#[derive(Debug, Clone)]
pub enum Found {
    /// Read from a server.
    Stored(Record),
    /// From the cache, as JSON ready to send.
    Cached(CachedRecord),
}

impl Found {
    /// What the record weighs in an answer (as a list's page counts it).
    pub fn bytes(&self) -> usize {
        match self {
            Self::Stored(record) => crate::store::record_bytes(record),
            Self::Cached(cached) => cached.json.len(),
        }
    }

    /// The record's version, whoever answered it: a server or the cache.
    pub fn version(&self) -> i64 {
        match self {
            Self::Stored(record) => record.version,
            Self::Cached(cached) => cached.version,
        }
    }
}

/// The outcome of a single write.
#[derive(Debug, Clone)]
pub struct Written {
    pub shard: ShardId,
    pub id: RecordId,
    pub upserted: Upserted,
    /// Hand this to a later read (`x-min-lsn`) to be sure it sees the write.
    pub token: WriteToken,
    pub cache: CacheUsage,
    /// True when the answer is an earlier request's with the same idempotency key:
    /// nothing was written now (`token` is then the primary's position now, past that
    /// write's commit).
    pub replayed: bool,
}

/// The outcome of a delete.
#[derive(Debug, Clone, Copy)]
pub struct Deleted {
    /// Whether there was a record to delete.
    pub existed: bool,
    pub token: WriteToken,
    /// As [`Written::replayed`].
    pub replayed: bool,
}

/// The merged answer of a read across every shard.
#[derive(Debug, Default)]
pub struct FanOut {
    /// Newest first, each with the shard it came from.
    pub records: Vec<(ShardId, Record)>,
    /// Shards that answered, and which role served them.
    pub answered: Vec<(ShardId, Role)>,
    /// Shards that did not, and why.
    pub failed: Vec<ClusterError>,
    /// Where the next page starts, when this one is full.
    pub next: Option<Cursor>,
}

impl<T> Served<T> {
    /// `value`, as answered by `server`.
    pub(crate) fn by(server: &Server, value: T) -> Self {
        Served {
            shard: server.shard,
            role: server.role,
            server: server.addr.clone(),
            value,
            from_cache: false,
            cache: CacheUsage::default(),
            seen_at: Lsn(0),
        }
    }

    /// Records the position the server had applied before the read (see `seen_at`).
    pub(crate) fn seen_at(mut self, at: Lsn) -> Self {
        self.seen_at = at;
        self
    }
}
