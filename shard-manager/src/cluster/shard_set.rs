//! The cluster's shards, which can grow while requests run: a map with a new shard
//! (`shard-manager add-shard`) adds its servers' pools here before any key is routed
//! to it. Requests take a snapshot (`arc-swap`, no lock); a grown set replaces it.
//! Shards are never removed while the gateway runs (ids are positions in the map).

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::shard::Shard;
use crate::config::{ConfigError, DatabaseSettings, ShardSettings};
use crate::routing::{Role, ShardId};
use crate::servers::Server;

/// Every shard the gateway has pools for, by id.
pub struct ShardSet {
    shards: ArcSwap<Vec<Arc<Shard>>>,
    db: DatabaseSettings,
    ban: Duration,
}

impl ShardSet {
    /// Pools for `shards` (opens no connection).
    pub fn new(
        shards: &[ShardSettings],
        db: &DatabaseSettings,
        ban: Duration,
    ) -> Result<Self, ConfigError> {
        let set = Self {
            shards: ArcSwap::from_pointee(Vec::new()),
            db: db.clone(),
            ban,
        };
        set.grow(shards)?;
        Ok(set)
    }

    /// A snapshot of every shard.
    pub fn all(&self) -> Arc<Vec<Arc<Shard>>> {
        self.shards.load_full()
    }

    /// One shard, if the gateway has it.
    pub fn get(&self, id: ShardId) -> Option<Arc<Shard>> {
        self.shards.load().get(id.index()).cloned()
    }

    /// Adds pools for the shards of `wanted` past the ones it has (the first ones are
    /// kept as they are); how many it has afterwards.
    pub fn grow(&self, wanted: &[ShardSettings]) -> Result<usize, ConfigError> {
        let current = self.all();
        if wanted.len() <= current.len() {
            return Ok(current.len());
        }
        let mut next: Vec<Arc<Shard>> = current.iter().cloned().collect();
        for (i, s) in wanted.iter().enumerate().skip(current.len()) {
            let id = ShardId(i as u32);
            let replicas = s
                .replicas
                .iter()
                .map(|r| self.server(id, Role::Replica, r))
                .collect::<Result<_, _>>()?;
            let primary = self.server(id, Role::Primary, &s.primary)?;
            next.push(Arc::new(Shard::new(
                id,
                primary,
                replicas,
                s.balance,
                s.read_primary,
            )));
        }
        let len = next.len();
        self.shards.store(Arc::new(next));
        Ok(len)
    }

    fn server(&self, shard: ShardId, role: Role, addr: &str) -> Result<Arc<Server>, ConfigError> {
        Server::new(shard, role, addr, &self.db, self.ban)
            .map(Arc::new)
            .map_err(|e| ConfigError::Invalid(format!("pool for {addr}: {e}")))
    }
}
