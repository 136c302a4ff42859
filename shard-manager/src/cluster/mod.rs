//! The gateway's one entry point into the cluster: domain operations in, results that
//! name the shard and the server role out. No SQL and no HTTP here: SQL lives in
//! [`crate::store`], HTTP in api-router.
//!
//! ## Layout
//! - this file: [`Cluster`], built from validated settings, and what it holds.
//! - [`operations`]: the cluster's public record operations (write, read, list, delete,
//!   bulk): each takes a [`RoutedKey`]; a shard's refusal of the slot reloads the map
//!   and retries once; `new_primary`: a primary that could not take the work (nothing
//!   sent) is tried again, within a bound, on the primary the map names: every 100 ms,
//!   at once when it changes or the shard's term rises.
//! - [`handover`]: a shard whose primary answered read-only is being handed over: its
//!   requests wait for the new primary up to `failover.hold_ms`, counted.
//! - [`records`]: one attempt of each, and the fan-out; `merge`: a fan-out's pages
//!   merged within the limit and the byte budget.
//! - [`query`]: a query across every shard, each shard's ordered page merged (k-way)
//!   with a keyset cursor that resumes every shard; its statements per shard, which a
//!   query at a cut runs too.
//! - [`bulk`]: batched writes grouped by shard, each record written once per key.
//! - `claim`: a write's idempotency key claimed at its home slot before anything is
//!   written, so a key names one request whichever shards its writes reach.
//! - [`shard`]: one shard's servers and how a read picks among them.
//! - [`shard_set`]: every shard's pools; grows when the map gains a shard, follows it
//!   when it names a shard's new primary.
//! - [`served`]: results together with where they came from.
//! - [`txn`]: all-or-nothing writes across shards (one round on one shard, two-phase
//!   commit with a coordinator log on several), and the prepared parts in doubt.
//! - [`schema`]: whether a shard has every migration (requests to one that lacks some
//!   answer 503 at once, naming them).
//! - [`snapshot`]: reads across shards (lists, queries, point reads) at one cut (the
//!   fence, a held transaction per shard), so no transaction on several shards is seen
//!   half committed.

pub mod bulk;
mod claim;
pub mod handover;
mod merge;
mod new_primary;
pub mod operations;
pub mod query;
pub mod records;
pub mod schema;
pub mod served;
pub mod shard;
pub mod shard_set;
pub mod snapshot;
pub mod txn;

use std::sync::Arc;
use std::time::Duration;

use crate::cache::Cache;
use crate::config::{ClusterSettings, ConfigError};
use crate::error::ClusterError;
use crate::live_map::{MapState, ShardMap};
use crate::routing::{Role, RoutedKey, Router, ShardId};
use crate::store::Tables;
use crate::wal::{Lsn, WriteToken};

pub use bulk::{BulkFailure, BulkItem, BulkOutcome, ShardBatch};
pub use served::{FanOut, Found, Served, Written};
pub use shard::Shard;
pub use shard_set::ShardSet;

/// The routed, connected cluster. Shared by every request (`Arc<Cluster>`).
pub struct Cluster {
    map: Arc<MapState>,
    tables: Tables,
    shards: Arc<ShardSet>,
    cache: Option<Cache>,
    settings: ClusterSettings,
    /// The coordinator log for transactions on several shards, and the recovery's
    /// bound (set once by the gateway when it has a metadata database).
    decision_log: std::sync::OnceLock<(Arc<dyn txn::log::DecisionLog>, Duration)>,
    /// Prepared parts the last recovery round saw.
    in_doubt: txn::InDoubt,
    /// Transactions by protocol and ending.
    txn_tally: txn::tally::Tally,
    /// The fence snapshot reads take (set once by the gateway, see [`snapshot`]).
    cut_fence: std::sync::OnceLock<Arc<dyn snapshot::fence::CutFence>>,
    /// Places for cuts kept for the next pages of lists and queries
    /// (`snapshot::held_limit`), and each caller's share of them.
    held_cuts: Arc<snapshot::holds::Holds>,
    /// Shards whose primary is being handed over, and the requests held for them.
    handovers: handover::Handovers,
    /// What the change streams served, per table.
    change_streams: crate::changes::StreamStats,
    /// The cuts waiting change readers share, one per tick.
    pub(crate) change_ticks: crate::changes::ticks::Ticks<snapshot::Cut>,
}

impl Cluster {
    /// Validates the settings and builds one pool per server, routing with the config
    /// file's map (version 0: not confirmed by a metadata database). Opens no
    /// connection, so it succeeds whatever servers are down.
    pub fn new(settings: ClusterSettings) -> Result<Self, ConfigError> {
        let router = settings.validate()?;
        Self::build(settings, router, false)
    }

    /// The cluster `map` describes (servers and placement from the metadata database;
    /// the rest of `settings` as configured).
    pub fn with_map(settings: &ClusterSettings, map: &ShardMap) -> Result<Self, ConfigError> {
        let settings = map.settings_over(settings);
        settings.validate()?;
        let router = map
            .router()
            .map_err(|e| ConfigError::Invalid(format!("the stored map: {e}")))?;
        let cluster = Self::build(settings, router, true)?;
        cluster.map.note_terms(map);
        cluster.shards.note_identities(map);
        Ok(cluster)
    }

    fn build(
        settings: ClusterSettings,
        router: Router,
        from_metadata: bool,
    ) -> Result<Self, ConfigError> {
        let ban = Duration::from_millis(settings.replication.ban_ms);
        let shards = Arc::new(ShardSet::new(&settings.shards, &settings.database, ban)?);
        let cache = match settings.cache.enabled {
            true => {
                let valid_for = settings.replication.check_interval()
                    + Duration::from_millis(settings.replication.check_timeout_ms);
                let cache = Cache::new(&settings.cache, valid_for)?;
                cache.connect_epochs(epoch_store(shards.clone()));
                Some(cache)
            }
            false => None,
        };
        let map = Arc::new(MapState::new(settings.clone(), router, from_metadata));
        let grown = shards.clone();
        let base = settings.clone();
        // Every map before it is routed with: pools for new shards, and fresh servers
        // for a shard whose primary or replicas changed (a failover).
        map.on_follow_shards(Box::new(move |next: &ShardMap| {
            let followed = grown
                .follow(&next.settings_over(&base).shards)
                .map_err(|e| e.to_string())?;
            grown.note_identities(next);
            Ok(followed)
        }));
        let held = snapshot::held_limit(settings.database.pool_max_size);
        let handovers = handover::Handovers::new(
            settings.failover.hold(),
            settings.failover.hold_max_requests,
        );
        Ok(Self {
            map,
            tables: Tables::new(settings.tables.allowed.clone()),
            shards,
            cache,
            settings,
            decision_log: std::sync::OnceLock::new(),
            in_doubt: txn::InDoubt::default(),
            txn_tally: txn::tally::Tally::default(),
            cut_fence: std::sync::OnceLock::new(),
            held_cuts: Arc::new(snapshot::holds::Holds::new(held)),
            handovers,
            change_streams: crate::changes::StreamStats::default(),
            change_ticks: Default::default(),
        })
    }

    pub fn settings(&self) -> &ClusterSettings {
        &self.settings
    }

    /// The shard map routed with now: the one way to route a key ([`Router::route`]).
    pub fn router(&self) -> arc_swap::Guard<Arc<Router>> {
        self.map.router()
    }

    /// The map this cluster follows (version, status, live gateways).
    pub fn map(&self) -> &Arc<MapState> {
        &self.map
    }

    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// A snapshot of every shard (the set grows when the map gains a shard).
    pub fn shards(&self) -> Arc<Vec<Arc<Shard>>> {
        self.shards.all()
    }

    /// One shard by id.
    pub fn shard(&self, id: ShardId) -> Result<Arc<Shard>, ClusterError> {
        self.shards
            .get(id)
            .ok_or_else(|| ClusterError::Unavailable {
                shard: id,
                role: Role::Primary,
                server: String::new(),
                reason: "this gateway has no pool for the shard yet".into(),
                maybe_committed: false,
            })
    }

    /// The shard a routed key names (pools are added before a map routes to them).
    fn shard_of(&self, key: &RoutedKey) -> Result<Arc<Shard>, ClusterError> {
        self.shard(key.shard())
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
        for shard in self.shards().iter() {
            shard.primary.close();
            shard.replicas.iter().for_each(|r| r.close());
        }
    }

    /// Gives transactions on several shards their coordinator log; `bound` is how long
    /// a prepared part may wait before a recovery decides for it. Once; later calls do
    /// nothing.
    pub fn set_decision_log(&self, log: Arc<dyn txn::log::DecisionLog>, bound: Duration) {
        let _ = self.decision_log.set((log, bound));
    }

    /// The coordinator log and the recovery's bound, when there is one.
    pub fn decision_log(&self) -> Option<(&Arc<dyn txn::log::DecisionLog>, Duration)> {
        self.decision_log.get().map(|(log, bound)| (log, *bound))
    }

    /// Prepared parts in doubt, as the last recovery round saw them.
    pub fn in_doubt(&self) -> &txn::InDoubt {
        &self.in_doubt
    }

    /// Transactions counted by protocol and ending since start.
    pub fn txn_tally(&self) -> &txn::tally::Tally {
        &self.txn_tally
    }

    /// Shards being handed over and the requests held for them, counted since start.
    pub fn handovers(&self) -> &handover::Handovers {
        &self.handovers
    }

    /// What the change streams served, per table.
    pub fn change_streams(&self) -> &crate::changes::StreamStats {
        &self.change_streams
    }

    pub fn cache(&self) -> Option<&Cache> {
        self.cache.as_ref()
    }
}

/// Raises a shard's shared cache epoch on its primary (see `cache::epochs`).
fn epoch_store(shards: Arc<ShardSet>) -> crate::cache::EpochStore {
    Box::new(move |shard: ShardId| {
        let primary = shards.get(shard).map(|s| s.primary.clone());
        Box::pin(async move {
            let primary = primary?;
            let raised = primary
                .run_as("bump cache epoch", async |c| {
                    crate::wire::upkeep::bump_cache_epoch(c).await
                })
                .await;
            match raised {
                Ok((epoch, wal)) => Some((epoch.max(0) as u64, Lsn::parse(&wal)?)),
                Err(e) => {
                    tracing::warn!(%shard, error = %e, "could not raise the shard's cache epoch");
                    None
                }
            }
        })
    })
}
