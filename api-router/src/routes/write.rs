//! `POST /api/write`: upsert one record on its shard's primary; with `If-Match`, replace
//! it only at the versions its tags name.

use actix_web::{web, HttpResponse};
use shard_manager::store::minted_id;
use shard_manager::{Document, Role};

use crate::access::Caller;
use crate::edge::observe::Outcome;
use crate::error::{ApiError, Problem};
use crate::input::body::{WriteRequest, WriteResponse};
use crate::input::conditional::{self, IfMatch, IfNoneMatch};
use crate::input::extract::{Durability, Routed};
use crate::input::idempotency::{canonical, mark_replayed, sent_with, IdempotencyKeyHeader};
use crate::input::json_body::BoundedJson;
use crate::limits::Quota;
use crate::server::headers::{ETAG, SHARD_LSN};
use crate::state::AppState;

#[utoipa::path(
    post,
    path = "/api/write",
    tag = "records",
    request_body = WriteRequest,
    params(
        ("x-shard-key" = String, Header, min_length = 1, max_length = 256, example = "user_123", description = "Shard key: 1 to 256 bytes of UTF-8"),
        ("x-durability" = inline(Option<Durability>), Header, description = "`primary` (default) or `replica` (any case): also wait until a replica applied the write"),
        ("idempotency-key" = Option<String>, Header, min_length = 1, max_length = 255, example = "order-42-try", description = "1 to 255 visible ASCII characters (bare or quoted): the write happens once; sending the same request with the key again (within `server.idempotency_ttl_secs`) answers as the first time, with `idempotency-replayed: true`"),
        ("if-match" = Option<String>, Header, example = "\"42.9f8e0c2d4b6a81735e2f0a9c3d4b5e6f\"", description = "`*` or the record's entity tags (`ETag` of a read or write; strong comparison, so a `W/` tag never matches): the record is replaced only if it exists at one of those versions (`*`: at any), checked and written in one statement; else 412 and nothing written. Never creates a record. Not with `idempotency-key`"),
    ),
    responses(
        (status = 201, description = "Created", body = WriteResponse,
            headers(("x-shard-lsn" = String, description = "Read-your-writes token: send it back in `x-min-lsn`"),
                ("etag" = String, description = "The record's entity tag at the version written"))),
        (status = 200, description = "Replaced an existing record", body = WriteResponse,
            headers(("x-shard-lsn" = String, description = "Read-your-writes token: send it back in `x-min-lsn`"),
                ("etag" = String, description = "The record's entity tag at the version written"))),
        (status = 400, description = "Missing or invalid header (the problem's `header` names it: an `if-match` that is not `*` or a list of quoted entity tags; `if-match` with `idempotency-key`; `if-none-match`, which a write does not take), malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "(`precondition-failed`) `if-match` did not name the record's version: nothing written. `current_version` is the record's version (0: no record), `current_etag` (and the `etag` header) its tag", body = Problem, content_type = "application/problem+json",
            headers(("etag" = String, description = "The record's current entity tag, when it exists"))),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not labelled JSON (`application/json` or a `+json` type)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown table, a body of the wrong shape, `data` not an object, bad id, a NUL character; or (`idempotency-key-reused`) the key was sent before with a different request", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the API key's rate (`rate-limited`) or its queries at once on the key's shard (`concurrency-limited`)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The shard failed the query (logged; the problem names the shard)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The shard's primary is unavailable; or (`cache-not-told`) the write committed but neither Redis nor the shard's cache epoch could be updated, so other gateways may serve the previous version for a while (the detail names the shard and the commit's lsn). Or (`record-id-unavailable`) a record without an id under an `Idempotency-Key`, before the gateway has read the cluster's secret for such ids from the metadata database: nothing written; send the id, or send the request again", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The shard did not answer in time, or (x-durability: replica) no replica applied the write in time", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn write(
    state: web::Data<AppState>,
    // Who calls, and their limiter (one argument: the handler takes many).
    (caller, quota): (Caller, Quota),
    key: Routed,
    durability: Durability,
    key_header: IdempotencyKeyHeader,
    (if_match, if_none_match): (IfMatch, IfNoneMatch),
    body: BoundedJson<WriteRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let table = state.cluster.tables().parse(&body.table)?;
    caller.permit(&table)?;
    conditional::write_headers(&if_match, &if_none_match, &key_header)?;
    let in_body = conditional::body_version(body.if_version.as_ref(), &if_match, &key_header)?;
    // The request as sent: an id the gateway generates is not part of it.
    let idempotency = key_header.for_request(&caller, state.server.idempotency_ttl_secs, || {
        vec![
            "write".into(),
            table.as_str().into(),
            key.0.as_str().into(),
            body.id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            canonical(&body.data),
        ]
    });
    let data = Document::parse_raw(body.data)?;
    let id = match data.named_id(body.id.as_ref())? {
        Some(id) => id,
        None => minted_id(idempotency.as_ref(), state.id_secret.get(), 0)?,
    };
    let _permits = quota.enter([key.0.shard()]).await?;
    let asked_at = std::time::Instant::now();
    let identity = (table.as_str(), key.0.as_str(), id.as_str());
    let condition = match (&if_match.0, in_body) {
        (Some(tags), _) => Some(tags.precondition(identity)),
        (None, in_body) => in_body,
    };
    let written = match &condition {
        None => {
            let every = state.cluster.settings().failover.key_every_write;
            let sent = sent_with(idempotency.clone(), &caller, every);
            state
                .bounded(state.cluster.write(&table, &key.0, id, data, sent.as_ref()))
                .await?
        }
        Some(condition) => {
            let write = state
                .cluster
                .write_if(&table, &key.0, id.clone(), data, condition);
            state
                .bounded(write)
                .await
                .map_err(|e| conditional::refused(e, identity))?
        }
    };
    let shard_time = asked_at.elapsed();
    state.record_cache(&written.cache);
    let replicated_to = match durability {
        Durability::Primary => None,
        Durability::Replica => Some(
            state
                .bounded(state.cluster.await_replica(written.token))
                .await?,
        ),
    };
    let up = written.upserted;
    let token = written.token.to_string();
    let mut res = if up.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    }
    .insert_header((SHARD_LSN, token.as_str()))
    .insert_header((
        ETAG,
        conditional::etag(
            (table.as_str(), key.0.as_str(), written.id.as_str()),
            up.version,
        ),
    ))
    .json(WriteResponse {
        shard: written.shard.0,
        table: table.as_str().to_owned(),
        id: written.id.as_str().to_owned(),
        version: up.version,
        created: up.created,
        created_at: up.created_at,
        updated_at: up.updated_at,
        lsn: token.clone(),
        replicated_to,
    });
    // A replay under the gateway's own key is its own retry: the client sent once.
    mark_replayed(&mut res, written.replayed && idempotency.is_some());
    Outcome::write(written.shard, Role::Primary, 1)
        .in_slot(key.0.slot(), shard_time)
        .attach(&mut res);
    Ok(res)
}
