//! `GET /api/shards/load`: load per slot of the key space and per shard over 10 s,
//! 1 min and 10 min, the hottest slots and keys; the whole cluster's by default.
//!
//! Requests for one key (point reads, writes, deletes) are counted toward their slot
//! by the analytics middleware (`edge::observe`), from the slot and shard time the
//! handler attaches to its `Outcome`.

use actix_web::{web, HttpResponse};
use analytics::cluster::{LoadReport, Scope};
use serde::Deserialize;
use shard_manager::routing::strategy::Layout;
use shard_manager::routing::Slot;
use utoipa::IntoParams;

use super::cluster_view;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// A gateway that stopped within this long is named missing from a load view: the
/// minute that `rebalance --by load` and the automatic balancer weigh lacks its load.
const LOAD_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoadParams {
    /// `cluster` (default): every live gateway's load, merged; `local`: this gateway's.
    #[param(example = "cluster")]
    pub scope: Option<String>,
}

#[utoipa::path(get, path = "/api/shards/load", tag = "operations", params(LoadParams),
    responses(
        (status = 200, description = "Requests, bytes and shard time per slot and per shard over 10 s, 1 min and 10 min; the hottest slots (with their shard) and keys; the gateways covered (`gateways`, `missing_gateways`, `partial`)", body = LoadReport),
        (status = 400, description = "Invalid scope", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn load(
    state: web::Data<AppState>,
    params: web::Query<LoadParams>,
) -> Result<HttpResponse, ApiError> {
    let scope = match params.scope.as_deref() {
        Some(text) => Scope::parse(text).map_err(ApiError::BadQuery)?,
        None => Scope::Cluster,
    };
    let mut figures = state.load.figures();
    let coverage = match scope {
        Scope::Local => cluster_view::local(&state),
        Scope::Cluster => {
            let (others, coverage) = cluster_view::gather(&state, LOAD_WINDOW).await;
            for other in &others {
                figures.merge(&other.load);
            }
            coverage
        }
    };
    let router = state.cluster.router();
    let shard_of = |slot: u32| match router.layout() {
        Layout::Slots(map) if slot < map.slot_count() => Some(map.owner(Slot(slot)).0),
        _ => None,
    };
    Ok(HttpResponse::Ok().json(LoadReport::build(&figures, shard_of, coverage)))
}
