//! `/api/indexes`: indexes for queries, made on every shard's primary online (admin
//! scope). `POST` records the index (asked again, the same index: the same answer, so a
//! client that hung up may simply ask again) and answers 202 at once with a `Location`
//! to poll:
//! the gateway's background reconcile builds it (`CREATE INDEX CONCURRENTLY`, which may
//! take minutes), so no request is held open and a client that hangs up stops nothing.
//! `GET` shows each index's state on every shard (`building`, `valid`, `failed`);
//! `DELETE` drops it everywhere the same way (202). The work is
//! `control_plane::indexes`'s; which queries an index serves is
//! `shard_manager::store::query_index`'s.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use control_plane::indexes::{self, IndexView};
use serde::{Deserialize, Serialize};
use shard_manager::store::query_index::{is_index_name, IndexSpec};
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::input::json_body::{Bounded, BoundedJson};
use crate::state::AppState;

/// An index to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"table": "users", "fields": ["age"]}))]
pub struct IndexRequest {
    /// One of the configured tables.
    pub table: String,
    /// 1 to 4 dotted paths, as queries name them; a query sorting by them in this
    /// order, or comparing the first, is served by the index.
    pub fields: Vec<String>,
}

impl Bounded for IndexRequest {}

/// An index accepted (or a drop asked): poll `location` for its state.
#[derive(Debug, Serialize, ToSchema)]
pub struct IndexAccepted {
    pub name: String,
    /// Where to read its state: `GET` it.
    pub location: String,
    /// `building` or `dropping`.
    pub state: String,
}

/// Every index and its state on each shard.
#[derive(Debug, Serialize, ToSchema)]
pub struct IndexList {
    pub indexes: Vec<IndexView>,
}

fn location(name: &str) -> String {
    format!("/api/indexes/{name}")
}

fn accepted(name: String, state: &str) -> HttpResponse {
    let location = location(&name);
    HttpResponse::Accepted()
        .insert_header((header::LOCATION, location.clone()))
        .json(IndexAccepted {
            name,
            location,
            state: state.into(),
        })
}

#[utoipa::path(
    post,
    path = "/api/indexes",
    tag = "operations",
    request_body = IndexRequest,
    responses(
        (status = 202, description = "Recorded (or asked again: as it was, a shard whose build failed built again); built on every primary in the background. `Location` shows its state", body = IndexAccepted),
        (status = 400, description = "(`invalid-index`) No fields, more than 4, a field twice, or a bad path (the detail names it)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "(`index-dropping`) This index is being dropped: ask again once it is gone; (`index-name-taken`) its name is another index's", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large a body", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not labelled JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown table, or a body of another shape", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The metadata database did not answer", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    body: BoundedJson<IndexRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.0;
    let table = state.cluster.tables().parse(&request.table)?;
    let spec = IndexSpec::parse(table.as_str(), &request.fields)
        .map_err(|e| ApiError::BadIndex(e.to_string()))?;
    let name = state
        .bounded(indexes::create(state.cluster.settings(), &spec))
        .await?;
    state.indexes.wake();
    Ok(accepted(name, "building"))
}

#[utoipa::path(
    get,
    path = "/api/indexes",
    tag = "operations",
    responses(
        (status = 200, description = "Every index and its state on each shard, read from the shards' catalogs", body = IndexList),
        (status = 503, description = "The metadata database did not answer", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let indexes = state
        .bounded(indexes::list(state.cluster.settings(), None))
        .await?;
    Ok(HttpResponse::Ok().json(IndexList { indexes }))
}

#[utoipa::path(
    get,
    path = "/api/indexes/{name}",
    tag = "operations",
    params(("name" = String, Path, description = "The index's name, as `POST` answered it")),
    responses(
        (status = 200, description = "The index and its state on each shard", body = IndexView),
        (status = 404, description = "(`index-not-found`) No such index (a dropped one is gone once every shard dropped it)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn one(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let found = match is_index_name(&name) {
        true => {
            state
                .bounded(indexes::list(state.cluster.settings(), Some(&name)))
                .await?
        }
        false => Vec::new(),
    };
    let view = found
        .into_iter()
        .next()
        .ok_or(indexes::IndexError::NoSuchIndex(name))?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(
    delete,
    path = "/api/indexes/{name}",
    tag = "operations",
    params(("name" = String, Path, description = "The index's name")),
    responses(
        (status = 202, description = "Dropped from every primary in the background (`DROP INDEX CONCURRENTLY`); `Location` shows it until it is gone", body = IndexAccepted),
        (status = 404, description = "(`index-not-found`) No such index", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn drop(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    if !is_index_name(&name) {
        return Err(indexes::IndexError::NoSuchIndex(name).into());
    }
    state
        .bounded(indexes::drop_index(state.cluster.settings(), &name))
        .await?;
    state.indexes.wake();
    Ok(accepted(name, "dropping"))
}
