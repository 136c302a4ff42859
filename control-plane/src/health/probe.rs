//! Health of every server: up or down, WAL position and replica lag in bytes; behind a
//! service address, the node the address leads to and the identity the gateway goes by.

use std::sync::Arc;

use futures_util::future::join_all;

use shard_manager::cluster::schema::SchemaState;
use shard_manager::cluster::shard::Shard;
use shard_manager::cluster::Cluster;
use shard_manager::config::{ReplicationSettings, ShardFollows};
use shard_manager::live_map::{Promotion, PromotionLog};
use shard_manager::routing::{Role, ShardId};
use shard_manager::servers::status::ServerStatus;
use shard_manager::servers::Server;
use shard_manager::store::identity::Identity;
use shard_manager::wal::Lsn;
use shard_manager::wire::{upkeep, Behind};

/// One server's state, as probed just now plus what traffic has seen.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ServerHealth {
    pub server: String,
    #[schema(value_type = String, example = "replica")]
    pub role: Role,
    pub up: bool,
    /// Why the server is considered down, when it is.
    pub error: Option<String>,
    /// Its new transactions are read-only by default (`default_transaction_read_only =
    /// on`), as probed now: on a primary, no write gets through.
    pub read_only_by_setting: bool,
    /// WAL write position (primary) or replay position (replica).
    pub lsn: Option<String>,
    /// Bytes of WAL the replica has not replayed yet, measured now; unknown when
    /// either side is down.
    pub lag_bytes: Option<u64>,
    /// The gateway's view: bans, time lag, whether it takes reads, traffic counters.
    pub gateway: ServerStatus,
}

/// The primary behind a service address (`follow = "address"`): the node its address
/// led to when a connection last opened through it, and what the gateway goes by.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct BehindAddress {
    /// The node really reached behind the address (`host:port` as the server sees
    /// itself), when a connection last opened through it; null before any did.
    pub node: Option<String>,
    /// The timeline that node was on.
    pub timeline: Option<u32>,
    /// Its cluster's system identifier (null where the role may not read it).
    pub system_identifier: Option<String>,
    /// Whether it was writable (out of recovery, not read-only).
    pub writable: Option<bool>,
    /// Whether it waits for a synchronous standby; without one an acknowledged write
    /// can be lost in a failover.
    pub synchronous: Option<bool>,
    /// Milliseconds since that connection opened.
    pub checked_ms_ago: Option<u64>,
    /// The primary's identity as the map recorded it (null until first seen).
    pub recorded: Option<Identity>,
    /// The lowest timeline a connection may be on to carry a write (0: none known
    /// yet): raised by the map and by every connection that reached a newer primary.
    pub floor: u32,
}

impl BehindAddress {
    fn of(behind: &Behind) -> Self {
        let last = behind.last_seen();
        let seen = last.as_ref().map(|(s, _)| s);
        Self {
            node: seen.and_then(|s| s.identity.node.clone()),
            timeline: seen.map(|s| s.identity.timeline),
            system_identifier: seen.and_then(|s| s.identity.system_identifier.clone()),
            writable: seen.map(|s| s.writable()),
            synchronous: seen.map(|s| s.synchronous),
            checked_ms_ago: last.as_ref().map(|(_, ago)| ago.as_millis() as u64),
            recorded: behind.recorded(),
            floor: behind.floor(),
        }
    }
}

/// Whether a shard's primary has every migration, as the monitor last found.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SchemaHealth {
    /// `complete`, `missing`, or `unknown` (not checked yet: the primary may be down).
    pub state: String,
    /// The migrations not applied, by folder name.
    pub missing: Vec<String>,
    /// What fixes it, when something is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl SchemaHealth {
    fn of(state: SchemaState) -> Self {
        match state {
            SchemaState::Unknown => Self {
                state: "unknown".into(),
                missing: Vec::new(),
                fix: None,
            },
            SchemaState::Complete => Self {
                state: "complete".into(),
                missing: Vec::new(),
                fix: None,
            },
            SchemaState::Missing(missing) => Self {
                state: "missing".into(),
                missing,
                fix: Some("run `shard-admin migrate` (or ./setup.sh run)".into()),
            },
        }
    }
}

/// What a shard can do now, named; anything but `ok` (or `not_serving`) makes the
/// cluster unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShardState {
    /// Its primary answers and takes writes.
    Ok,
    /// It owns no slot (just added, or retired): no request goes there.
    NotServing,
    /// Its primary does not answer, or is in recovery: writes wait for a new one.
    PrimaryDown,
    /// Its primary lacks migrations: its requests answer 503 naming them.
    SchemaMissing,
    /// Its primary answers, but its new transactions are read-only by setting
    /// (`default_transaction_read_only = on`): every write waits, then answers 503. A
    /// switchover's drain left behind (lifted by `fix`), or the HA manager's own for
    /// the seconds it promotes.
    PrimaryReadOnly,
}

/// One shard's servers.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ShardHealth {
    #[schema(value_type = u32)]
    pub shard: ShardId,
    /// What the shard can do now.
    pub state: ShardState,
    /// What to run, when the state has a fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// Requests to a shard whose schema is missing answer 503 naming what is missing.
    pub schema: SchemaHealth,
    pub primary: ServerHealth,
    pub replicas: Vec<ServerHealth>,
    /// The primary's term in the map routed with: 1 at the start, one more after each
    /// failover or switchover.
    pub term: u64,
    /// The shard's last failover or switchover in the map's history (when, from, to,
    /// term, how long it took); null when it never had one.
    pub last_failover: Option<Promotion>,
    /// False for a shard that owns no slot (just added, or retired): no request goes
    /// there, so it does not count in `healthy`.
    pub serving: bool,
    /// How its failovers are followed: `servers` (the map moves to the promoted
    /// server) or `address` (behind a fixed address; see `behind`).
    #[schema(value_type = String, example = "servers")]
    pub follows: ShardFollows,
    /// Behind an address: the node it leads to and the identity the gateway goes by;
    /// null for a shard that follows its servers.
    pub behind: Option<BehindAddress>,
}

/// The whole cluster.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ClusterHealth {
    /// True when every serving shard's primary answered and none lacks migrations:
    /// writes can go everywhere.
    pub healthy: bool,
    /// The map this gateway routes with. The metadata database being unreachable does
    /// not make the gateway unhealthy: it keeps routing with the last map it had, and
    /// says so here (`reachable: false`, `error`).
    pub map: crate::map::MapStatus,
    pub shards: Vec<ShardHealth>,
    /// Slot moves stopped past `moves.stuck_after_secs` (one stopped at the switch: at
    /// once), neither resumed nor aborted; the gateway fills them from its move watch.
    /// They do not change `healthy`: every request is still served, and a load
    /// balancer must not take gateways out for a move an operator has to settle.
    pub stuck_moves: Vec<crate::moves::stuck::StuckMove>,
    /// One sentence per thing an operator should look at now (a stuck move, moves not
    /// read lately), each saying what to do; empty when all is well.
    pub warnings: Vec<String>,
    /// Prepared parts of transactions on several shards not resolved yet, as this
    /// gateway's last recovery round saw them (`txn::recovery`).
    pub in_doubt_transactions: u64,
    /// The oldest of them, in milliseconds (0 when none).
    pub oldest_in_doubt_ms: u64,
    /// The newest failovers and switchovers of the map's history (at most 20), newest
    /// first, as this gateway last read them: the same on every gateway, including
    /// ones recorded before it started. Read at start and whenever the map's terms
    /// change.
    pub failovers: Vec<Promotion>,
}

/// Probes every server of `cluster` at once, each bounded by the connect timeout. The
/// map's side (version, terms, failovers) is read with the shards, before the probes,
/// so that one answer describes one map version even when a probe is slow.
pub async fn cluster_health(cluster: &Cluster) -> ClusterHealth {
    let limits = &cluster.settings().replication;
    let map = cluster.map();
    let all = cluster.shards();
    let status = map.status();
    let promotions: Arc<PromotionLog> = map.promotions();
    let of_map: Vec<OfMap> = {
        let router = cluster.router();
        all.iter()
            .map(|s| OfMap {
                serving: router.serves_keys(s.id),
                term: map.term(s.id.index()),
                last_failover: promotions.last(s.id.0).cloned(),
            })
            .collect()
    };
    let probes = all
        .iter()
        .zip(of_map)
        .map(|(s, of_map)| shard_health(s, limits, of_map));
    let shards = join_all(probes).await;
    let mut warnings: Vec<String> = shards
        .iter()
        .filter(|s| s.state == ShardState::PrimaryReadOnly)
        .map(|s| {
            format!(
                "{}'s primary {} is read-only by setting (default_transaction_read_only = on): every write to it waits, then answers 503; unless a switchover or failover of it is under way, run `{}`",
                s.shard,
                s.primary.server,
                s.fix.as_deref().unwrap_or_default()
            )
        })
        .collect();
    warnings.extend(shards.iter().filter_map(asynchronous_behind));
    ClusterHealth {
        healthy: shards
            .iter()
            .all(|s| matches!(s.state, ShardState::Ok | ShardState::NotServing)),
        map: status,
        shards,
        stuck_moves: Vec::new(),
        warnings,
        in_doubt_transactions: cluster.in_doubt().get().0,
        oldest_in_doubt_ms: cluster.in_doubt().get().1,
        failovers: promotions.recent.clone(),
    }
}

/// The warning for a primary behind an address with no synchronous standby.
fn asynchronous_behind(s: &ShardHealth) -> Option<String> {
    let behind = s.behind.as_ref()?;
    (behind.synchronous == Some(false) && behind.writable == Some(true)).then(|| {
        format!(
            "{}'s primary behind {} (node {}) has no synchronous standby: an acknowledged write can be lost in a failover",
            s.shard,
            s.primary.server,
            behind.node.as_deref().unwrap_or("unknown")
        )
    })
}

/// What the map routed with says of a shard.
struct OfMap {
    serving: bool,
    term: u64,
    last_failover: Option<Promotion>,
}

async fn shard_health(shard: &Shard, limits: &ReplicationSettings, of_map: OfMap) -> ShardHealth {
    let status = |s: &Server| ServerStatus::of(s, limits, shard.read_primary);
    let (primary, replicas) = futures_util::join!(
        probe(&shard.primary, status),
        join_all(shard.replicas.iter().map(|r| probe(r, status)))
    );
    let primary_pos = primary.lsn.as_deref().and_then(Lsn::parse);
    let replicas = replicas
        .into_iter()
        .map(|mut r| {
            r.lag_bytes = match (primary_pos, r.lsn.as_deref().and_then(Lsn::parse)) {
                (Some(p), Some(q)) if r.up => Some(p.0.saturating_sub(q.0)),
                _ => None,
            };
            r
        })
        .collect();
    let schema = SchemaHealth::of(shard.schema.state());
    let state = if !of_map.serving {
        ShardState::NotServing
    } else if !primary.up {
        ShardState::PrimaryDown
    } else if schema.state == "missing" {
        ShardState::SchemaMissing
    } else if primary.read_only_by_setting {
        ShardState::PrimaryReadOnly
    } else {
        ShardState::Ok
    };
    ShardHealth {
        shard: shard.id,
        state,
        fix: match state {
            ShardState::PrimaryReadOnly => Some(format!(
                "shard-admin switchover --shard {} --lift-drain",
                shard.id.0
            )),
            ShardState::SchemaMissing => schema.fix.clone(),
            _ => None,
        },
        schema,
        primary,
        replicas,
        term: of_map.term,
        last_failover: of_map.last_failover,
        serving: of_map.serving,
        follows: shard.follow,
        behind: shard.primary.behind.as_deref().map(BehindAddress::of),
    }
}

async fn probe(server: &Server, status: impl Fn(&Server) -> ServerStatus) -> ServerHealth {
    let result = server
        .probe(async |conn| upkeep::position(conn).await)
        .await;
    let mut read_only_by_setting = false;
    let (up, error, lsn) = match result {
        Ok(upkeep::Position {
            in_recovery,
            wal: lsn,
            read_only_by_setting: read_only,
        }) => {
            server.saw_read_only_setting(read_only);
            read_only_by_setting = read_only;
            let expected = server.role == Role::Replica;
            if in_recovery == expected {
                (true, None, lsn)
            } else {
                let what = if in_recovery {
                    "in recovery"
                } else {
                    "not in recovery"
                };
                (
                    false,
                    Some(format!("configured as {} but {what}", server.role)),
                    lsn,
                )
            }
        }
        Err(e) => (false, Some(e.to_string()), None),
    };
    ServerHealth {
        server: server.addr.clone(),
        role: server.role,
        up,
        error,
        read_only_by_setting,
        lsn,
        lag_bytes: None,
        gateway: status(server),
    }
}
