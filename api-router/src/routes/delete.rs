//! `DELETE /api/delete`: remove one record from its shard's primary; with `If-Match`,
//! only at the versions its tags name.

use actix_web::{web, HttpResponse};
use shard_manager::RecordId;

use crate::access::Caller;
use crate::edge::observe::Outcome;
use crate::error::{ApiError, Problem};
use crate::input::body::DeleteParams;
use crate::input::conditional::{self, IfMatch, IfNoneMatch};
use crate::input::extract::Routed;
use crate::input::idempotency::{mark_replayed, sent_with, IdempotencyKeyHeader};
use crate::limits::Quota;
use crate::server::headers::SHARD_LSN;
use crate::state::AppState;

#[utoipa::path(
    delete,
    path = "/api/delete",
    tag = "records",
    params(DeleteParams, ("x-shard-key" = String, Header, min_length = 1, max_length = 256, example = "user_123", description = "Shard key: 1 to 256 bytes of UTF-8"),
        ("idempotency-key" = Option<String>, Header, min_length = 1, max_length = 255, example = "delete-42-try", description = "1 to 255 visible ASCII characters: sending the same delete with the key again answers as the first time (204, or 404 if it found nothing), with `idempotency-replayed: true`"),
        ("if-match" = Option<String>, Header, example = "\"42.9f8e0c2d4b6a81735e2f0a9c3d4b5e6f\"", description = "`*` or the record's entity tags (strong comparison): the record is deleted only if it exists at one of those versions (`*`: at any), checked and deleted in one statement; else 412 (a missing record too) and nothing deleted. Not with `idempotency-key`")),
    responses(
        (status = 204, description = "Deleted",
            headers(("x-shard-lsn" = String, description = "Read-your-writes token of the delete: send it back in `x-min-lsn`"))),
        (status = 400, description = "Missing or invalid shard key or other header (the problem's `header` names it: an `if-match` that is not `*` or a list of quoted entity tags; `if-match` with `idempotency-key`; `if-none-match`, which a delete does not take) or parameters", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "(`precondition-failed`) `if-match` did not name the record's version, or there is no record: nothing deleted. `current_version` is the record's version (0: no record), `current_etag` (and the `etag` header) its tag", body = Problem, content_type = "application/problem+json",
            headers(("etag" = String, description = "The record's current entity tag, when it exists"))),
        (status = 404, description = "No such record", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown table or invalid id; or (`idempotency-key-reused`) the key was sent before with a different request", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the API key's rate (`rate-limited`) or its queries at once on the key's shard (`concurrency-limited`)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The shard failed the query (logged; the problem names the shard)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The shard's primary is unavailable; or (`cache-not-told`) the delete committed but neither Redis nor the shard's cache epoch could be updated, so other gateways may serve the previous version for a while (the detail names the shard and the commit's lsn)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The shard did not answer in time", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    quota: Quota,
    key: Routed,
    params: web::Query<DeleteParams>,
    key_header: IdempotencyKeyHeader,
    (if_match, if_none_match): (IfMatch, IfNoneMatch),
) -> Result<HttpResponse, ApiError> {
    let params = params.into_inner();
    let table = state.cluster.tables().parse(&params.table)?;
    caller.permit(&table)?;
    let id = RecordId::parse(&params.id)?;
    conditional::write_headers(&if_match, &if_none_match, &key_header)?;
    let idempotency = key_header.for_request(&caller, state.server.idempotency_ttl_secs, || {
        let (table, key) = (table.as_str(), key.0.as_str());
        vec![
            "delete".into(),
            table.into(),
            key.into(),
            id.as_str().into(),
        ]
    });
    let _permits = quota.enter([key.0.shard()]).await?;
    let asked_at = std::time::Instant::now();
    let served = match &if_match.0 {
        None => {
            let every = state.cluster.settings().failover.key_every_write;
            let sent = sent_with(idempotency.clone(), &caller, every);
            state
                .bounded(state.cluster.delete(&table, &key.0, &id, sent.as_ref()))
                .await?
        }
        Some(tags) => {
            let identity = (table.as_str(), key.0.as_str(), id.as_str());
            let condition = tags.precondition(identity);
            let delete = state.cluster.delete_if(&table, &key.0, &id, &condition);
            state
                .bounded(delete)
                .await
                .map_err(|e| conditional::refused(e, identity))?
        }
    };
    let shard_time = asked_at.elapsed();
    state.record_cache(&served.cache);
    let done = served.value;
    if !done.existed {
        return Err(ApiError::RecordNotFound {
            table: params.table,
            id: params.id,
        });
    }
    let mut res = HttpResponse::NoContent()
        .insert_header((SHARD_LSN, done.token.to_string()))
        .finish();
    // A replay under the gateway's own key is its own retry: the client sent once.
    mark_replayed(&mut res, done.replayed && idempotency.is_some());
    Outcome::write(served.shard, served.role, 1)
        .in_slot(key.0.slot(), shard_time)
        .attach(&mut res);
    Ok(res)
}
