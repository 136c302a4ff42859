//! `GET /api/health`: every server probed now; 200 when every serving shard's `state` is
//! `ok` (its primary up, migrated, not read-only by setting); stuck
//! slot moves in `stuck_moves` and `warnings` (they do not change the status); each
//! shard's primary term and last failover, and the newest failovers and switchovers
//! of the map's history in `failovers`.
//! `GET /api/health/live`: the process serves. `GET /api/health/ready`: it wants traffic
//! (503 while draining before a stop: what a load balancer should check).

use actix_web::{web, HttpResponse};
use control_plane::ClusterHealth;

use super::moves;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/api/health",
    tag = "operations",
    responses(
        (status = 200, description = "Every primary is up (`warnings` may still name a stuck slot move: a move stopped past `moves.stuck_after_secs`, or at the switch, neither resumed nor aborted; it does not change the status). Each shard's `term` and `last_failover`, and `failovers`, the newest failovers and switchovers of the map's history, come from the map, not from the probes", body = ClusterHealth),
        (status = 503, description = "At least one serving shard's `state` is not `ok`: its primary is down, lacks migrations, or is read-only by setting (`primary_read_only`: a switchover's drain left behind; `fix` and `warnings` name the command that lifts it). The body says which", body = ClusterHealth),
    )
)]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let mut health = control_plane::health::cluster_health(&state.cluster).await;
    let (stuck_moves, warnings) = moves::warnings(&state.moves.seen(), state.moves.stuck_after());
    health.stuck_moves = stuck_moves;
    health.warnings.extend(warnings);
    if health.healthy {
        HttpResponse::Ok().json(health)
    } else {
        HttpResponse::ServiceUnavailable().json(health)
    }
}

/// Liveness: the process serves HTTP. Touches no database, so it is also the HTTP
/// ceiling the benchmarks compare against.
#[utoipa::path(
    get,
    path = "/api/health/live",
    tag = "operations",
    responses((status = 200, description = "The gateway process is serving", body = Object, example = json!({"status": "ok"})))
)]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

/// Readiness: 200 while the gateway wants traffic, 503 once a stop signal made it drain
/// (it still serves what arrives, for `server.drain_ms`). Touches no database: a shard
/// down is `/api/health`'s business, and the gateway still answers for the others.
#[utoipa::path(
    get,
    path = "/api/health/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Serving and wants traffic", body = Object, example = json!({"status": "ok"})),
        (status = 503, description = "(`draining`) Draining before a stop: take it out of rotation", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.draining.is_draining() {
        return Err(ApiError::Draining);
    }
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#))
}
