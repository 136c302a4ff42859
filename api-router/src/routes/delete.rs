//! `DELETE /api/delete`: remove one record from its shard's primary.

use actix_web::{web, HttpResponse};
use shard_manager::RecordId;

use crate::body::DeleteParams;
use crate::error::{ApiError, Problem};
use crate::extract::Routed;
use crate::headers::SHARD_LSN;
use crate::observe::Outcome;
use crate::state::AppState;

#[utoipa::path(
    delete,
    path = "/api/delete",
    tag = "records",
    params(DeleteParams, ("x-shard-key" = String, Header, description = "Shard key")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Missing or invalid shard key or parameters", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such record", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown table", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The shard's primary is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete(
    state: web::Data<AppState>,
    key: Routed,
    params: web::Query<DeleteParams>,
) -> Result<HttpResponse, ApiError> {
    let params = params.into_inner();
    let table = state.cluster.tables().parse(&params.table)?;
    let id = RecordId::parse(&params.id)?;
    let served = state
        .bounded(state.cluster.delete(&table, &key.0, &id))
        .await?;
    state.record_cache(&served.cache);
    let (existed, token) = served.value;
    if !existed {
        return Err(ApiError::RecordNotFound {
            table: params.table,
            id: params.id,
        });
    }
    let mut res = HttpResponse::NoContent()
        .insert_header((SHARD_LSN, token.to_string()))
        .finish();
    Outcome::write(served.shard, served.role, 1).attach(&mut res);
    Ok(res)
}
