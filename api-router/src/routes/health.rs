//! `GET /api/health`: every server probed now; 200 when all primaries are up.

use actix_web::{web, HttpResponse};
use shard_manager::ClusterHealth;

use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/api/health",
    tag = "operations",
    responses(
        (status = 200, description = "Every primary is up", body = ClusterHealth),
        (status = 503, description = "At least one primary is down (the body says which)", body = ClusterHealth),
    )
)]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let health = state.cluster.health().await;
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
