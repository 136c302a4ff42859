//! The cluster's shards, which can grow and change while requests run: a map with a
//! new shard (`shard-admin add-shard`) adds its servers' pools here before any key
//! is routed to it; a map naming another primary for a shard (a failover) replaces
//! that shard's entry, keeping the pools of servers whose role did not change. Requests take a snapshot (`arc-swap`, no lock); a grown set replaces it.
//! Shards are never removed while the gateway runs (ids are positions in the map).

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::shard::Shard;
use crate::config::{ConfigError, DatabaseSettings, ShardFollows, ShardSettings};
use crate::live_map::ShardMap;
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
        set.follow(shards)?;
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

    /// Makes the set match `wanted`: pools for the shards past the ones it has, and a
    /// fresh shard for one whose primary or replicas changed (a failover promoted a
    /// replica); a server keeping its address and role keeps its pool and state. How
    /// many shards it has afterwards (never fewer: ids are positions).
    pub fn follow(&self, wanted: &[ShardSettings]) -> Result<usize, ConfigError> {
        let current = self.all();
        let mut next: Vec<Arc<Shard>> = current.iter().cloned().collect();
        let mut changed = false;
        for (i, s) in wanted.iter().enumerate() {
            let id = ShardId(i as u32);
            let old = current.get(i);
            if old.is_some_and(|o| same_servers(o, s)) {
                continue;
            }
            let keep = |role: Role, addr: &str| -> Option<Arc<Server>> {
                let o = old?;
                std::iter::once(&o.primary)
                    .chain(o.replicas.iter())
                    .find(|k| k.role == role && k.addr == addr)
                    .cloned()
            };
            let server = |role: Role, addr: &str| match keep(role, addr) {
                Some(kept) => Ok(kept),
                None => self.server(id, role, addr),
            };
            let primary = match s.follow {
                ShardFollows::Address => match keep(Role::Primary, &s.primary) {
                    Some(kept) if kept.behind.is_some() => kept,
                    _ => self.behind_address(id, &s.primary)?,
                },
                ShardFollows::Servers => server(Role::Primary, &s.primary)?,
            };
            let replicas = s
                .replicas
                .iter()
                .map(|r| server(Role::Replica, r))
                .collect::<Result<Vec<_>, _>>()?;
            let mut shard = Shard::new(id, primary, replicas, s.balance, s.read_primary);
            shard.batch_point_reads = self.db.batch_point_reads;
            shard.follow = s.follow;
            let shard = Arc::new(shard);
            if let Some(o) = old {
                tracing::info!(shard = %id, from = %o.primary.addr, to = %shard.primary.addr, "following the shard's servers as the map names them");
                next[i] = shard;
            } else {
                next.push(shard);
            }
            changed = true;
        }
        let len = next.len();
        if changed {
            self.shards.store(Arc::new(next));
        }
        Ok(len)
    }

    /// Tells each primary behind an address the identity `map` recorded for it (its
    /// floor rises to the recorded timeline, never falls).
    pub fn note_identities(&self, map: &ShardMap) {
        let shards = self.all();
        for (entry, shard) in map.shards.iter().zip(shards.iter()) {
            if let (Some(identity), Some(behind)) = (&entry.identity, &shard.primary.behind) {
                behind.record(identity.clone());
            }
        }
    }

    fn behind_address(&self, shard: ShardId, addr: &str) -> Result<Arc<Server>, ConfigError> {
        Server::behind_address(shard, addr, &self.db, self.ban)
            .map(Arc::new)
            .map_err(|e| ConfigError::Invalid(format!("pool for {addr}: {e}")))
    }

    fn server(&self, shard: ShardId, role: Role, addr: &str) -> Result<Arc<Server>, ConfigError> {
        Server::new(shard, role, addr, &self.db, self.ban)
            .map(Arc::new)
            .map_err(|e| ConfigError::Invalid(format!("pool for {addr}: {e}")))
    }
}

/// Whether `shard` already has the servers `wanted` names, in their roles, followed as
/// it says.
fn same_servers(shard: &Shard, wanted: &ShardSettings) -> bool {
    shard.follow == wanted.follow
        && shard.primary.addr == wanted.primary
        && shard.replicas.len() == wanted.replicas.len()
        && shard
            .replicas
            .iter()
            .zip(&wanted.replicas)
            .all(|(have, want)| have.addr == *want)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> DatabaseSettings {
        DatabaseSettings {
            user: "u".into(),
            password: String::new().into(),
            dbname: "d".into(),
            connect_timeout_ms: 100,
            statement_timeout_ms: 100,
            txn_lock_timeout_ms: 2000,
            pool_max_size: 1,
            pool_wait_timeout_ms: 10,
            batch_point_reads: true,
            batch_writes: true,
            pool_threads: 1,
            allow_insecure_auth: false,
            sslmode: Default::default(),
            ssl_root_cert: None,
        }
    }

    fn shard(primary: &str, replicas: &[&str]) -> ShardSettings {
        ShardSettings {
            primary: primary.into(),
            replicas: replicas.iter().map(|r| r.to_string()).collect(),
            slots: Vec::new(),
            balance: Default::default(),
            read_primary: false,
            follow: Default::default(),
        }
    }

    #[test]
    fn a_failover_swaps_the_roles_and_leaves_the_other_shards_as_they_were() {
        let before = [shard("h:1", &["h:2", "h:3"]), shard("h:4", &["h:5"])];
        let set = ShardSet::new(&before, &db(), Duration::from_secs(1)).unwrap();
        let (zero, one) = (set.get(ShardId(0)).unwrap(), set.get(ShardId(1)).unwrap());

        // The same servers: nothing replaced.
        assert_eq!(set.follow(&before).unwrap(), 2);
        assert!(Arc::ptr_eq(&set.get(ShardId(0)).unwrap(), &zero));

        // Shard 0's replica h:3 promoted; the old primary listed last as a replica.
        let after = [shard("h:3", &["h:2", "h:1"]), shard("h:4", &["h:5"])];
        assert_eq!(set.follow(&after).unwrap(), 2);
        let now = set.get(ShardId(0)).unwrap();
        assert_eq!(
            (now.primary.addr.as_str(), now.primary.role),
            ("h:3", Role::Primary)
        );
        let replicas: Vec<(&str, Role)> = now
            .replicas
            .iter()
            .map(|r| (r.addr.as_str(), r.role))
            .collect();
        assert_eq!(replicas, [("h:2", Role::Replica), ("h:1", Role::Replica)]);
        // h:2 kept its role, so its pool and state; the others are new servers.
        assert!(Arc::ptr_eq(&now.replicas[0], &zero.replicas[0]));
        assert!(!Arc::ptr_eq(&now.primary, &zero.replicas[1]));
        assert!(Arc::ptr_eq(&set.get(ShardId(1)).unwrap(), &one));

        // A map with a new shard adds it.
        let grown = [after[0].clone(), after[1].clone(), shard("h:6", &[])];
        assert_eq!(set.follow(&grown).unwrap(), 3);
        assert_eq!(set.get(ShardId(2)).unwrap().primary.addr, "h:6");
    }
}
