//! `GET /api/shards`: the shard map and every server's state as traffic sees it, and
//! `GET /api/shards/locate`: where one key lives.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use shard_manager::config::Balance;
use shard_manager::status::ServerStatus;
use shard_manager::ShardKey;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// One shard: its slots and servers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShardView {
    pub shard: u32,
    /// Inclusive slot ranges, e.g. `"0-341"`.
    pub slots: Vec<String>,
    /// How eventual reads are spread: `round_robin` or `least_outstanding`.
    pub balance: String,
    pub servers: Vec<ServerStatus>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShardsResponse {
    pub strategy: String,
    pub slot_count: u32,
    pub shards: Vec<ShardView>,
}

#[utoipa::path(get, path = "/api/shards", tag = "operations",
    responses((status = 200, description = "The shard map and server states", body = ShardsResponse)))]
pub async fn shards(state: web::Data<AppState>) -> HttpResponse {
    let cluster = &state.cluster;
    let router = cluster.router();
    let limits = &cluster.settings().replication;
    let shards = cluster
        .shards()
        .iter()
        .map(|shard| ShardView {
            shard: shard.id.0,
            slots: router
                .ranges_of(shard.id)
                .iter()
                .map(|(a, b)| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("{a}-{b}")
                    }
                })
                .collect(),
            balance: match shard.balance {
                Balance::RoundRobin => "round_robin".into(),
                Balance::LeastOutstanding => "least_outstanding".into(),
            },
            servers: std::iter::once(&shard.primary)
                .chain(&shard.replicas)
                .map(|s| s.status(limits, shard.read_primary))
                .collect(),
        })
        .collect();
    HttpResponse::Ok().json(ShardsResponse {
        strategy: "slots".into(),
        slot_count: router.slot_count(),
        shards,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LocateParams {
    /// The shard key to place.
    pub key: String,
}

/// Where a key lives.
#[derive(Debug, Serialize, ToSchema)]
pub struct LocateResponse {
    pub key: String,
    pub strategy: String,
    /// xxh3_64 of the key's bytes, as hex.
    pub hash: String,
    pub slot: u32,
    pub shard: u32,
    pub primary: String,
    pub replicas: Vec<String>,
}

#[utoipa::path(get, path = "/api/shards/locate", tag = "operations", params(LocateParams),
    responses(
        (status = 200, description = "The key's placement", body = LocateResponse),
        (status = 400, description = "Invalid key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn locate(
    state: web::Data<AppState>,
    params: web::Query<LocateParams>,
) -> Result<HttpResponse, ApiError> {
    let key = ShardKey::parse(&params.key)?;
    let p = state.cluster.locate(&key);
    let shard = &state.cluster.shards()[p.shard.index()];
    Ok(HttpResponse::Ok().json(LocateResponse {
        key: key.as_str().to_owned(),
        strategy: "slots".into(),
        hash: format!("{:016x}", p.hash),
        slot: p.slot.0,
        shard: p.shard.0,
        primary: shard.primary.addr.clone(),
        replicas: shard.replicas.iter().map(|r| r.addr.clone()).collect(),
    }))
}
