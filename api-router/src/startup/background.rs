//! The gateway's background tasks, owned by one value: the health monitor, the
//! idempotency sweeper, the map follower, the figures publisher, the automatic
//! balancer, the key follower, the record-id secret reader, the move watcher, the HA
//! promotion watcher and the transaction recovery. [`Background::start`] starts them
//! all; [`Background::stop`] (or dropping it) stops them all.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ::analytics::load::SlotLoad;
use ::analytics::Analytics;
use control_plane::failover;
use control_plane::health::Sweeper;
use control_plane::id_secret::IdSecretReader;
use control_plane::keys::{KeyFollower, KeyRing};
use control_plane::map::figures::{FigureBoard, Published, Publisher};
use control_plane::map::{Follower, Identity};
use control_plane::moves::auto_balance::Balancer;
use control_plane::moves::{MoveWatch, Watcher};
use control_plane::Monitor;
use shard_manager::store::IdSecret;
use shard_manager::Cluster;

use crate::server::settings::Settings;

/// What the tasks need from the start-up: the rest comes from the settings.
pub struct Inputs {
    pub cluster: Arc<Cluster>,
    pub identity: Identity,
    pub ring: Arc<KeyRing>,
    pub moves: Arc<MoveWatch>,
    pub id_secret: Arc<OnceLock<IdSecret>>,
    pub figures: Arc<FigureBoard>,
    /// This gateway's figures, which the publisher gives the others' cluster views.
    pub analytics: Arc<Analytics>,
    pub load: Arc<SlotLoad>,
}

/// Every background task of one gateway; each stops when dropped.
pub struct Background {
    monitor: Monitor,
    sweeper: Sweeper,
    follower: Follower,
    publisher: Publisher,
    balancer: Option<Balancer>,
    keys: KeyFollower,
    id_secret: IdSecretReader,
    watcher: Watcher,
    failover: Option<failover::Watcher>,
    recovery: control_plane::txn::Recovery,
}

impl Background {
    /// Starts every task, and gives the cluster the metadata database's decision log
    /// and cut fence. Must be called inside a Tokio runtime.
    pub fn start(settings: &Settings, inputs: Inputs) -> Self {
        let Inputs {
            cluster,
            identity,
            ring,
            moves,
            id_secret,
            figures,
            analytics,
            load,
        } = inputs;
        let gateway = identity.id;
        // Transactions on several shards log their decisions in the metadata database;
        // every gateway resolves what a dead one left prepared. Snapshot reads take the
        // fence that holds back those decisions.
        let log: Arc<dyn shard_manager::cluster::txn::log::DecisionLog> =
            Arc::new(control_plane::txn::MetaLog::new(settings.cluster.clone()));
        let bound = Duration::from_millis(settings.server.txn_in_doubt_ms);
        cluster.set_decision_log(log.clone(), bound);
        cluster.set_cut_fence(Arc::new(control_plane::txn::MetaFence::new(
            settings.cluster.clone(),
            &gateway,
        )));
        // Never 0: refused at start-up (ServerSettings::validate).
        let sweep_every = Duration::from_secs(settings.server.idempotency_sweep_secs);
        Self {
            monitor: Monitor::spawn(cluster.clone()),
            sweeper: Sweeper::spawn(
                cluster.clone(),
                sweep_every,
                settings.cluster.changes.retention(),
            ),
            publisher: publisher(settings, gateway, figures, analytics, load),
            follower: follower(&cluster, identity),
            balancer: Balancer::spawn(
                settings.cluster.clone(),
                settings.balancer.clone(),
                slot_requests,
            ),
            keys: KeyFollower::spawn(ring, settings.cluster.clone()),
            id_secret: IdSecretReader::spawn(id_secret, settings.cluster.clone()),
            watcher: Watcher::spawn(moves),
            failover: (settings.cluster.failover.watch)
                .then(|| failover::Watcher::spawn(cluster.clone())),
            recovery: control_plane::txn::Recovery::spawn(
                cluster,
                log,
                Duration::from_millis(settings.server.txn_recovery_ms),
                bound,
            ),
        }
    }

    /// Stops every task (as dropping does), the monitor first.
    pub fn stop(self) {
        let Self {
            monitor,
            sweeper,
            follower,
            publisher,
            balancer,
            keys,
            id_secret,
            watcher,
            failover,
            recovery,
        } = self;
        drop(monitor);
        drop((sweeper, follower, keys, id_secret, watcher));
        drop((failover, recovery, publisher, balancer));
    }
}

/// Publishes this gateway's figures for the others' cluster views every
/// `analytics.publish_ms`, off the request path (folding the slot counters as it goes).
fn publisher(
    settings: &Settings,
    gateway: uuid::Uuid,
    board: Arc<FigureBoard>,
    analytics: Arc<Analytics>,
    load: Arc<SlotLoad>,
) -> Publisher {
    let every = Duration::from_millis(analytics.config().publish_ms);
    let produce = move || {
        let mut figures = analytics.figures();
        figures.load = load.figures();
        figures.to_bytes()
    };
    Publisher::spawn(settings.cluster.clone(), gateway, every, board, produce)
}

/// The map follower. A cache reads no epoch until this gateway is listed, where movers
/// find its prefix to tell it of a retired epoch.
fn follower(cluster: &Arc<Cluster>, identity: Identity) -> Follower {
    match cluster.cache() {
        Some(cache) => {
            cache.hold_until_listed();
            let owner = cluster.clone();
            let listed = move |at| {
                if let Some(cache) = owner.cache() {
                    cache.listed(at);
                }
            };
            Follower::spawn_telling(cluster.map().clone(), identity, Box::new(listed))
        }
        None => Follower::spawn(cluster.map().clone(), identity),
    }
}

/// Each slot's requests over the last minute, summed over the gateways' published
/// figures: what the automatic balancer evens out.
fn slot_requests(published: &[Published], slots: usize) -> Vec<u64> {
    let mut weights = vec![0u64; slots];
    for figures in published
        .iter()
        .filter_map(|p| ::analytics::cluster::Figures::from_bytes(&p.figures))
    {
        if let Some(minute) = figures.load.windows.get(1) {
            for (slot, counts) in &minute.slots {
                if let Some(w) = weights.get_mut(*slot as usize) {
                    *w += counts.requests;
                }
            }
        }
    }
    weights
}
