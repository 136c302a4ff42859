//! The gateway's one entry point into the cluster: domain operations in, results that
//! name the shard and the server role out. No SQL and no HTTP here: SQL lives in
//! [`crate::store`], HTTP in api-router.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{ClusterSettings, ConfigError};
use crate::error::ClusterError;
use crate::key::{Consistency, Role, ShardId, ShardKey};
use crate::record::{Document, RecordId};
use crate::router::{Placement, Router};
use crate::server::Server;
use crate::store::{self, NewRecord, Record, Upserted};
use crate::table::{TableName, Tables};

/// A shard: one primary, any number of replicas.
pub struct Shard {
    pub id: ShardId,
    pub primary: Arc<Server>,
    pub replicas: Vec<Arc<Server>>,
    /// Round-robin cursor over the replicas.
    next: AtomicUsize,
}

/// A result together with where it came from.
#[derive(Debug, Clone)]
pub struct Served<T> {
    pub shard: ShardId,
    pub role: Role,
    pub server: String,
    pub value: T,
}

/// The outcome of a single write.
#[derive(Debug, Clone)]
pub struct Written {
    pub shard: ShardId,
    pub id: RecordId,
    pub upserted: Upserted,
}

/// The routed, connected cluster. Shared by every request (`Arc<Cluster>`).
pub struct Cluster {
    router: Router,
    tables: Tables,
    shards: Vec<Shard>,
    settings: ClusterSettings,
}

impl Cluster {
    /// Validates the settings and builds one pool per server. Opens no connection, so
    /// it succeeds whatever servers are down.
    pub fn new(settings: ClusterSettings) -> Result<Self, ConfigError> {
        let ranges = settings.validate()?;
        let router = Router::new(&settings.routing, &ranges);
        let ban = Duration::from_millis(settings.database.replica_ban_ms);
        let db = &settings.database;
        let build = |shard: ShardId, role: Role, addr: &str| {
            Server::new(shard, role, addr, db, ban)
                .map(Arc::new)
                .map_err(|e| ConfigError::Invalid(format!("pool for {addr}: {e}")))
        };
        let mut shards = Vec::with_capacity(settings.shards.len());
        for (i, s) in settings.shards.iter().enumerate() {
            let id = ShardId(i as u32);
            shards.push(Shard {
                id,
                primary: build(id, Role::Primary, &s.primary)?,
                replicas: s
                    .replicas
                    .iter()
                    .map(|r| build(id, Role::Replica, r))
                    .collect::<Result<_, _>>()?,
                next: AtomicUsize::new(0),
            });
        }
        Ok(Self {
            router,
            tables: Tables::new(settings.tables.allowed.clone()),
            shards,
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
        let upserted = shard
            .primary
            .run(async |conn| store::upsert(conn, &row).await)
            .await?;
        Ok(Written {
            shard: shard.id,
            id,
            upserted,
        })
    }

    /// One record, from a server chosen by `consistency`.
    pub async fn read(
        &self,
        table: &TableName,
        key: &ShardKey,
        id: &RecordId,
        consistency: Consistency,
    ) -> Result<Served<Option<Record>>, ClusterError> {
        let (shard, _) = self.shard(key);
        shard
            .read(consistency, async |conn| {
                store::find(conn, table.as_str(), key.as_str(), id.as_str()).await
            })
            .await
    }

    /// A key's records in one table, newest first.
    pub async fn list(
        &self,
        table: &TableName,
        key: &ShardKey,
        limit: u32,
        consistency: Consistency,
    ) -> Result<Served<Vec<Record>>, ClusterError> {
        let (shard, _) = self.shard(key);
        shard
            .read(consistency, async |conn| {
                store::list(conn, table.as_str(), key.as_str(), i64::from(limit)).await
            })
            .await
    }

    /// Deletes one record on its primary; `value` says whether it existed.
    pub async fn delete(
        &self,
        table: &TableName,
        key: &ShardKey,
        id: &RecordId,
    ) -> Result<Served<bool>, ClusterError> {
        let (shard, _) = self.shard(key);
        let existed = shard
            .primary
            .run(async |conn| store::delete(conn, table.as_str(), key.as_str(), id.as_str()).await)
            .await?;
        Ok(shard.primary.served(existed))
    }

    /// Closes every pool; in-flight operations finish, new ones fail.
    pub fn close(&self) {
        for shard in &self.shards {
            shard.primary.close();
            shard.replicas.iter().for_each(|r| r.close());
        }
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
        }
    }
}

impl Shard {
    /// The servers a read may use, in the order to try them: eligible replicas in
    /// round-robin order, then the primary. Strong reads use only the primary.
    fn read_targets(&self, consistency: Consistency) -> Vec<&Arc<Server>> {
        let mut targets = Vec::with_capacity(self.replicas.len() + 1);
        if consistency == Consistency::Eventual && !self.replicas.is_empty() {
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            let n = self.replicas.len();
            targets.extend(
                (0..n)
                    .map(|i| &self.replicas[(start + i) % n])
                    .filter(|r| r.is_eligible()),
            );
        }
        targets.push(&self.primary);
        targets
    }

    /// Runs a read on the first server that can take it; a server that is down is
    /// skipped (and banned by [`Server::run`]) and the next one tried.
    async fn read<T, F>(&self, consistency: Consistency, op: F) -> Result<Served<T>, ClusterError>
    where
        F: AsyncFn(&mut diesel_async::AsyncPgConnection) -> diesel::QueryResult<T>,
    {
        let mut last = None;
        for server in self.read_targets(consistency) {
            match server.run(async |conn| op(conn).await).await {
                Ok(value) => return Ok(server.served(value)),
                Err(e) if e.is_unavailable() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ClusterError::Unavailable {
            shard: self.id,
            role: Role::Primary,
            server: self.primary.addr.clone(),
            reason: "no server to read from".into(),
        }))
    }
}
