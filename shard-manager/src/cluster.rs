//! The gateway's one entry point into the cluster: domain operations in, results that
//! name the shard and the server role out. No SQL and no HTTP here: SQL lives in
//! [`crate::store`], HTTP in api-router.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::{Cache, CacheEvent, CacheTrace, CachedRecord, Lookup};
use crate::config::{ClusterSettings, ConfigError};
use crate::cursor::{Cursor, ListQuery};
use crate::error::ClusterError;
use crate::key::{Consistency, Role, ShardId, ShardKey};
use crate::lsn::{Lsn, WriteToken};
use crate::record::{Document, RecordId};
use crate::router::{Placement, Router};
use crate::server::Server;
use crate::shard::Shard;
use crate::store::{self, NewRecord, Record, Upserted};
use crate::table::{TableName, Tables};

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
    pub cache: CacheTrace,
}

/// A record a point read found.
#[derive(Debug, Clone)]
pub enum Found {
    /// Read from a server.
    Stored(Record),
    /// From the cache, as JSON ready to send.
    Cached(CachedRecord),
}

/// The outcome of a single write.
#[derive(Debug, Clone)]
pub struct Written {
    pub shard: ShardId,
    pub id: RecordId,
    pub upserted: Upserted,
    /// Hand this to a later read (`x-min-lsn`) to be sure it sees the write.
    pub token: WriteToken,
    pub cache: CacheTrace,
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

/// The routed, connected cluster. Shared by every request (`Arc<Cluster>`).
pub struct Cluster {
    router: Router,
    tables: Tables,
    shards: Vec<Shard>,
    cache: Option<Cache>,
    settings: ClusterSettings,
}

impl Cluster {
    /// Validates the settings and builds one pool per server. Opens no connection, so
    /// it succeeds whatever servers are down.
    pub fn new(settings: ClusterSettings) -> Result<Self, ConfigError> {
        let ranges = settings.validate()?;
        let router = Router::new(&settings.routing, &ranges);
        let ban = Duration::from_millis(settings.replication.ban_ms);
        let db = &settings.database;
        let build = |shard: ShardId, role: Role, addr: &str| {
            Server::new(shard, role, addr, db, ban)
                .map(Arc::new)
                .map_err(|e| ConfigError::Invalid(format!("pool for {addr}: {e}")))
        };
        let mut shards = Vec::with_capacity(settings.shards.len());
        for (i, s) in settings.shards.iter().enumerate() {
            let id = ShardId(i as u32);
            shards.push(Shard::new(
                id,
                build(id, Role::Primary, &s.primary)?,
                s.replicas
                    .iter()
                    .map(|r| build(id, Role::Replica, r))
                    .collect::<Result<_, _>>()?,
                s.balance,
                s.read_primary,
            ));
        }
        let cache = match settings.cache.enabled {
            true => {
                Some(Cache::new(&settings.cache).map_err(|e| ConfigError::Invalid(e.to_string()))?)
            }
            false => None,
        };
        Ok(Self {
            router,
            tables: Tables::new(settings.tables.allowed.clone()),
            shards,
            cache,
            settings,
        })
    }

    pub fn settings(&self) -> &ClusterSettings {
        &self.settings
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    pub fn locate(&self, key: &ShardKey) -> Placement {
        self.router.locate(key)
    }

    fn shard(&self, key: &ShardKey) -> (&Shard, Placement) {
        let placement = self.router.locate(key);
        (&self.shards[placement.shard.index()], placement)
    }

    /// Upserts one record on its shard's primary. Returns once the primary committed.
    pub async fn write(
        &self,
        table: &TableName,
        key: &ShardKey,
        id: RecordId,
        data: Document,
    ) -> Result<Written, ClusterError> {
        let (shard, placement) = self.shard(key);
        let data = data.into_value();
        let row = NewRecord {
            table_name: table.as_str(),
            shard_key: key.as_str(),
            id: id.as_str(),
            slot: placement.slot.0 as i32,
            data: &data,
        };
        let (upserted, lsn) = shard
            .primary
            .run(async |conn| store::upsert(conn, &row).await)
            .await?;
        let token = self.token(shard, &lsn);
        let mut trace = CacheTrace::default();
        if let Some(cache) = &self.cache {
            let record = Record {
                table_name: table.as_str().to_owned(),
                shard_key: key.as_str().to_owned(),
                id: id.as_str().to_owned(),
                slot: row.slot,
                data: data.clone(),
                version: upserted.version,
                created_at: upserted.created_at,
                updated_at: upserted.updated_at,
            };
            cache
                .install_write(
                    (row.table_name, row.shard_key, row.id),
                    upserted.version,
                    token.lsn,
                    Some(&record),
                    &mut trace,
                )
                .await;
        }
        Ok(Written {
            shard: shard.id,
            id,
            upserted,
            token,
            cache: trace,
        })
    }

    /// One record, from a server chosen by `consistency`, or from the cache.
    pub async fn read(
        &self,
        table: &TableName,
        key: &ShardKey,
        id: &RecordId,
        consistency: Consistency,
    ) -> Result<Served<Option<Found>>, ClusterError> {
        let (shard, _) = self.shard(key);
        let mut trace = CacheTrace::default();
        // Captured before anything is read: what a miss installs goes into this epoch.
        let epoch = self.cache.as_ref().map(Cache::epoch);
        if let (Some(cache), Some(epoch)) = (&self.cache, epoch) {
            if consistency == Consistency::Strong {
                trace.events.push(CacheEvent::Bypass);
            } else {
                let ident = (table.as_str(), key.as_str(), id.as_str());
                let value = match cache
                    .lookup(epoch, ident, consistency.min_lsn(), &mut trace)
                    .await
                {
                    Lookup::Hit(record) => Some(Some(Found::Cached(record))),
                    Lookup::Gone => Some(None),
                    Lookup::Miss(_) | Lookup::Bypass => None,
                };
                if let Some(value) = value {
                    return Ok(Served {
                        shard: shard.id,
                        role: Role::Replica,
                        server: "cache".into(),
                        value,
                        from_cache: true,
                        cache: trace,
                    });
                }
            }
        }
        let served = shard
            .read(consistency, &self.settings.replication, async |conn| {
                store::find(conn, table.as_str(), key.as_str(), id.as_str()).await
            })
            .await?;
        if let (Some(cache), Some(epoch), Some(record)) = (&self.cache, epoch, &served.value) {
            // A token read was served by a server that had applied the token's position.
            cache
                .install_read(epoch, record, consistency.min_lsn(), &mut trace)
                .await;
        }
        Ok(Served {
            shard: served.shard,
            role: served.role,
            server: served.server,
            value: served.value.map(Found::Stored),
            from_cache: false,
            cache: trace,
        })
    }

    /// A key's records in one table, newest first (filter and cursor in `query`).
    pub async fn list(
        &self,
        table: &TableName,
        key: &ShardKey,
        query: &ListQuery,
        consistency: Consistency,
    ) -> Result<Served<Vec<Record>>, ClusterError> {
        let (shard, _) = self.shard(key);
        shard
            .read(consistency, &self.settings.replication, async |conn| {
                store::list(conn, table.as_str(), Some(key.as_str()), query).await
            })
            .await
    }

    /// A table's records across every shard at once, merged newest first, with the
    /// limit applied globally. Shards that fail are named in the result, not hidden.
    pub async fn fan_out(
        &self,
        table: &TableName,
        query: &ListQuery,
        consistency: Consistency,
    ) -> FanOut {
        let reads = self.shards.iter().map(|shard| async move {
            let result = shard
                .read(consistency, &self.settings.replication, async |conn| {
                    store::list(conn, table.as_str(), None, query).await
                })
                .await;
            (shard.id, result)
        });
        let mut out = FanOut::default();
        for (shard, result) in futures_util::future::join_all(reads).await {
            match result {
                Ok(served) => {
                    out.answered.push((shard, served.role));
                    out.records
                        .extend(served.value.into_iter().map(|r| (shard, r)));
                }
                Err(err) => out.failed.push(err),
            }
        }
        out.records.sort_by_key(|(_, r)| Cursor::sort_key(r));
        let limit = query.limit as usize;
        if out.records.len() > limit {
            out.records.truncate(limit);
        }
        if out.records.len() == limit {
            out.next = out.records.last().map(|(_, r)| Cursor::after(r));
        }
        out
    }

    /// Deletes one record on its primary; returns whether it existed, and the token.
    pub async fn delete(
        &self,
        table: &TableName,
        key: &ShardKey,
        id: &RecordId,
    ) -> Result<Served<(bool, WriteToken)>, ClusterError> {
        let (shard, _) = self.shard(key);
        let (deleted, lsn) = shard
            .primary
            .run(async |conn| store::delete(conn, table.as_str(), key.as_str(), id.as_str()).await)
            .await?;
        let mut served = shard
            .primary
            .served((deleted.is_some(), self.token(shard, &lsn)));
        if let (Some(cache), Some(version)) = (&self.cache, deleted) {
            let seen_at = served.value.1.lsn;
            cache
                .install_write(
                    (table.as_str(), key.as_str(), id.as_str()),
                    version,
                    seen_at,
                    None,
                    &mut served.cache,
                )
                .await;
        }
        Ok(served)
    }

    /// Waits until a replica of the token's shard has applied the write it names.
    /// Returns the replica's address.
    pub async fn await_replica(&self, token: WriteToken) -> Result<String, ClusterError> {
        let limit = Duration::from_millis(self.settings.replication.durability_timeout_ms);
        self.shards[token.shard.index()]
            .await_replica(token.lsn, limit)
            .await
    }

    /// Makes the token for a commit on `shard`; an unparsable position (never seen from
    /// PostgreSQL) degrades to 0, which only costs the read a primary round trip.
    pub(crate) fn token(&self, shard: &Shard, lsn: &str) -> WriteToken {
        let lsn = Lsn::parse(lsn).unwrap_or(Lsn(0));
        shard.primary.saw_wal(lsn);
        WriteToken {
            shard: shard.id,
            lsn,
        }
    }

    /// Closes every pool; in-flight operations finish, new ones fail.
    pub fn close(&self) {
        for shard in &self.shards {
            shard.primary.close();
            shard.replicas.iter().for_each(|r| r.close());
        }
    }

    pub(crate) fn cache(&self) -> Option<&Cache> {
        self.cache.as_ref()
    }

    /// Routes a batch: used by [`crate::bulk`].
    pub(crate) fn placement_shard(&self, key: &ShardKey) -> (&Shard, Placement) {
        self.shard(key)
    }
}

impl Server {
    pub(crate) fn served<T>(&self, value: T) -> Served<T> {
        Served {
            shard: self.shard,
            role: self.role,
            server: self.addr.clone(),
            value,
            from_cache: false,
            cache: CacheTrace::default(),
        }
    }
}
