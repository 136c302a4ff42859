//! `GET /api/shards`: the shard map and every server's state as traffic sees it, and
//! `GET /api/shards/locate`: where one key lives and why.
//!
//! Both name the placement strategy and show only what it uses: slot ranges under
//! `slots`, ring points and weights under `hash_ring`, key ranges under `range`.
//! `/api/shards` also lists the slot moves, as the move watch last read them.

use actix_web::{web, HttpResponse};
use control_plane::health::stats::ShardData;
use control_plane::map::{GatewayInfo, MapStatus};
use serde::{Deserialize, Serialize};
use shard_manager::config::Balance;
use shard_manager::live_map::Promotion;
use shard_manager::routing::strategy::{Bound, Decision, KeyRange, Layout, Sharding};
use shard_manager::servers::status::ServerStatus;
use shard_manager::{ShardId, ShardKey};
use utoipa::{IntoParams, ToSchema};

use super::moves::{self, MoveView, MovesRead};
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// One shard: what of the key space it holds, and its servers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShardView {
    pub shard: u32,
    /// `slots` only: inclusive slot ranges, e.g. `"0-341"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots: Option<Vec<String>>,
    /// `range` only: the key ranges this shard holds, in key order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Vec<KeyRangeView>>,
    /// `hash_ring` only: this shard's weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// `hash_ring` only: its points on the ring (`vnodes × weight`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points: Option<u32>,
    /// The fraction of uniformly spread keys this shard should hold (its slots, its
    /// arcs of the ring, 1/N under `modulo`); absent under `range`, where it depends on
    /// the keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
    /// How eventual reads are spread: `round_robin` or `least_outstanding`.
    pub balance: String,
    /// The primary's term in the map: 1 at the start, one more after each failover
    /// or switchover.
    pub term: u64,
    /// The shard's last failover or switchover in the map's history (when, from, to,
    /// term, how long it took, and its event line); null when it never had one.
    pub last_failover: Option<Promotion>,
    /// The primary first, then the replicas, as the map names them now.
    pub servers: Vec<ServerStatus>,
    /// Rows per table and bytes on disk (only with `?data=true`: counting scans every
    /// shard's table, so it is never done by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<ShardData>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShardsParams {
    /// `true` also counts rows per table and bytes on disk on every shard (a scan of
    /// each shard's records; default `false`).
    pub data: Option<bool>,
}

/// A key range, `[from, to)`; `null` is the start or the end of the key space. Integer
/// bounds (`numeric`) are decimal strings, exact beyond JavaScript's 2⁵³.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyRangeView {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A pause as it happens: the shards being handed over (their primary answered
/// read-only: a switchover's drain, a promotion) and the requests waiting for them.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeldView {
    /// Requests waiting now for a shard's new primary.
    pub now: u64,
    /// Since the gateway started: requests that waited, then went on.
    pub released: u64,
    /// Since the gateway started: requests answered 503 at the hold's bound.
    pub timed_out: u64,
    /// The shards being handed over.
    pub handovers: Vec<HandoverView>,
}

/// One table's change streams on this gateway.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamView {
    pub table: String,
    /// Server-Sent Events streams open now.
    pub open: u64,
    /// Changes sent since the gateway started (pages and events).
    pub sent: u64,
    /// Commit to send, of the newest change of the table's last page with changes.
    pub lag_secs: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HandoverView {
    pub shard: u32,
    /// How long its requests may still wait (`failover.hold_ms` after its primary's
    /// last read-only answer).
    pub ends_in_ms: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShardsResponse {
    /// `slots`, `modulo`, `hash_ring` or `range`.
    pub strategy: String,
    /// Keys are integers (`modulo` and `range` with `routing.numeric`).
    pub numeric: bool,
    /// Every record stores `hash % slot_count` as its slot; under `slots` the slot
    /// places the key.
    pub slot_count: u32,
    /// `hash_ring` only: ring points per unit of weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vnodes: Option<u32>,
    /// The map version this gateway routes with, and how it follows the metadata
    /// database.
    pub map: MapStatus,
    /// Every gateway heard from lately (address, map version, binary version), as of
    /// this gateway's last heartbeat.
    pub gateways: Vec<GatewayInfo>,
    pub shards: Vec<ShardView>,
    /// The newest failovers and switchovers of the map's history (at most 20), newest
    /// first, each with its event line; the same on every gateway.
    pub failovers: Vec<Promotion>,
    /// Requests this gateway holds now for shards whose primary is changing hands, and
    /// those shards.
    pub held: HeldView,
    /// The change streams this gateway served, per table (none before a table's first
    /// page or stream).
    pub streams: Vec<StreamView>,
    /// Slot moves: the active ones, then the newest finished ones, newest first.
    pub moves: Vec<MoveView>,
    /// How fresh `moves` is.
    pub moves_read: MovesRead,
}

#[utoipa::path(get, path = "/api/shards", tag = "operations", params(ShardsParams),
    responses(
        (status = 200, description = "The shard map, server states, slot moves, rows per table and bytes on disk", body = ShardsResponse),
        (status = 400, description = "`data` is not `true` or `false`", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "Counting rows did not finish in time", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn shards(
    state: web::Data<AppState>,
    params: web::Query<ShardsParams>,
) -> Result<HttpResponse, ApiError> {
    let cluster = &state.cluster;
    let mut data = if params.data.unwrap_or(false) {
        state
            .bounded(async { Ok::<_, ApiError>(control_plane::health::data_stats(cluster).await) })
            .await?
            .into_iter()
            .map(Some)
            .collect()
    } else {
        Vec::new()
    };
    data.resize(cluster.shards().len(), None);
    let (move_views, moves_read) = moves::views(&state.moves.seen(), state.moves.stuck_after());
    let router = cluster.router();
    let layout = router.layout();
    let limits = &cluster.settings().replication;
    let all = cluster.shards();
    let promotions = cluster.map().promotions();
    let shards = all
        .iter()
        .map(|shard| {
            let id = shard.id;
            let ring = match layout {
                Layout::HashRing(ring) => Some(ring),
                _ => None,
            };
            ShardView {
                shard: id.0,
                slots: matches!(layout, Layout::Slots(_)).then(|| {
                    router
                        .ranges_of(id)
                        .iter()
                        .map(|&(a, b)| slot_range(a, b))
                        .collect()
                }),
                ranges: match layout {
                    Layout::Range(map) => Some(map.ranges_of(id).iter().map(range_view).collect()),
                    _ => None,
                },
                weight: ring.map(|r| r.weight(id)),
                points: ring.map(|r| r.points_of(id)),
                share: share(layout, id),
                balance: match shard.balance {
                    Balance::RoundRobin => "round_robin".into(),
                    Balance::LeastOutstanding => "least_outstanding".into(),
                },
                term: cluster.map().term(id.index()),
                last_failover: promotions.last(id.0).cloned(),
                servers: std::iter::once(&shard.primary)
                    .chain(&shard.replicas)
                    .map(|s| ServerStatus::of(s, limits, shard.read_primary))
                    .collect(),
                data: data[id.index()].take(),
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(ShardsResponse {
        strategy: router.strategy().to_string(),
        numeric: router.is_numeric(),
        slot_count: router.slot_count(),
        vnodes: match layout {
            Layout::HashRing(ring) => Some(ring.vnodes()),
            _ => None,
        },
        map: cluster.map().status(),
        gateways: cluster.map().gateways(),
        shards,
        failovers: promotions.recent.clone(),
        held: held(cluster),
        streams: cluster
            .change_streams()
            .tables()
            .into_iter()
            .map(|(table, t)| StreamView {
                table,
                open: t.open,
                sent: t.sent,
                lag_secs: t.lag_secs,
            })
            .collect(),
        moves: move_views,
        moves_read,
    }))
}

fn held(cluster: &shard_manager::Cluster) -> HeldView {
    let handovers = cluster.handovers();
    let stats = handovers.stats();
    HeldView {
        now: stats.held,
        released: stats.released,
        timed_out: stats.timed_out,
        handovers: handovers
            .open(tokio::time::Instant::now())
            .into_iter()
            .map(|(shard, left)| HandoverView {
                shard: shard.0,
                ends_in_ms: left.as_millis() as u64,
            })
            .collect(),
    }
}

fn slot_range(a: u32, b: u32) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}-{b}")
    }
}

fn range_view(r: &KeyRange) -> KeyRangeView {
    let text = |b: &Option<Bound>| {
        b.as_ref().map(|b| match b {
            Bound::Text(t) => t.clone(),
            Bound::Number(n) => n.to_string(),
        })
    };
    KeyRangeView {
        from: text(&r.from),
        to: text(&r.to),
    }
}

/// The shard's expected fraction of uniformly spread keys, where the strategy fixes it.
fn share(layout: &Layout, id: ShardId) -> Option<f64> {
    match layout {
        Layout::Slots(map) => Some(f64::from(map.owned(id)) / f64::from(map.slot_count())),
        Layout::Modulo(m) => Some(1.0 / f64::from(m.shard_count())),
        Layout::HashRing(ring) => Some(ring.share(id)),
        Layout::Range(_) => None,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LocateParams {
    /// The shard key to place.
    #[param(example = "user_123")]
    pub key: String,
}

/// Where a key lives, and the strategy's reason.
#[derive(Debug, Serialize, ToSchema)]
pub struct LocateResponse {
    pub key: String,
    /// `slots`, `modulo`, `hash_ring` or `range`.
    pub strategy: String,
    /// xxh3_64 of the key's bytes, as hex.
    pub hash: String,
    /// `slots` only: `hash % slot_count`, the slot that places the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<u32>,
    /// Numeric keys only: the key as an integer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<i64>,
    /// `modulo` only: N, the divisor of the hash (or of the integer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modulus: Option<u32>,
    /// `hash_ring` only: the owning point, the first at or after the hash, as hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ring_point: Option<String>,
    /// `hash_ring` only: the owning point's name, `shard-{i}-vnode-{v}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vnode: Option<String>,
    /// `range` only: the range that holds the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<KeyRangeView>,
    /// The placement in one sentence.
    pub rule: String,
    pub shard: u32,
    pub primary: String,
    pub replicas: Vec<String>,
}

#[utoipa::path(get, path = "/api/shards/locate", tag = "operations", params(LocateParams),
    responses(
        (status = 200, description = "The key's placement", body = LocateResponse),
        (status = 400, description = "Invalid key, or not an integer when keys are numeric",
            body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn locate(
    state: web::Data<AppState>,
    params: web::Query<LocateParams>,
) -> Result<HttpResponse, ApiError> {
    let bad = |e: &dyn std::fmt::Display| ApiError::BadQuery(format!("key: {e}"));
    let key = ShardKey::parse(&params.key).map_err(|e| bad(&e))?;
    let router = state.cluster.router();
    let routed = router.route(key).map_err(|e| bad(&e))?;
    let explained = router.explain(&routed);
    let key = routed.key();
    let p = explained.placement;
    let shard = state.cluster.shard(p.shard)?;
    let mut view = LocateResponse {
        key: key.as_str().to_owned(),
        strategy: router.strategy().to_string(),
        hash: format!("{:016x}", p.hash),
        slot: None,
        number: explained.number,
        modulus: None,
        ring_point: None,
        vnode: None,
        range: None,
        rule: String::new(),
        shard: p.shard.0,
        primary: shard.primary.addr.clone(),
        replicas: shard.replicas.iter().map(|r| r.addr.clone()).collect(),
    };
    view.rule = match explained.decision {
        Decision::Slot(slot) => {
            view.slot = Some(slot.0);
            format!(
                "slot {slot} (hash mod {}) is owned by shard {}",
                router.slot_count(),
                p.shard.0
            )
        }
        Decision::Modulo { modulus, numeric } => {
            view.modulus = Some(modulus);
            match explained.number {
                Some(n) if numeric => format!("{n} mod {modulus} = {}", p.shard.0),
                _ => format!("hash mod {modulus} = {}", p.shard.0),
            }
        }
        Decision::Ring { point, vnode } => {
            let name = format!("shard-{}-vnode-{vnode}", p.shard.0);
            view.ring_point = Some(format!("{point:016x}"));
            let rule = format!(
                "the first ring point at or after the hash is {name} ({point:016x}), on shard {}",
                p.shard.0
            );
            view.vnode = Some(name);
            rule
        }
        Decision::Range { index, range } => {
            let shown = range_view(&range);
            let bound = |b: &Option<Bound>, open: &str| {
                b.as_ref().map_or(open.to_string(), |b| b.to_string())
            };
            let rule = format!(
                "range {index} [{}, {}) holds the key and belongs to shard {}",
                bound(&range.from, "start"),
                bound(&range.to, "end"),
                p.shard.0
            );
            view.range = Some(shown);
            rule
        }
    };
    Ok(HttpResponse::Ok().json(view))
}
