//! `POST /api/write`: upsert one record on its shard's primary.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shard_manager::{Document, Role};
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::extract::{Durability, ShardKeyHeader, SHARD_LSN};
use crate::observe::Outcome;
use crate::state::AppState;

/// A record to write.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"table": "users", "data": {"user_id": "user_123", "name": "John Doe", "email": "john@example.com", "partition_key": "A"}}))]
pub struct WriteRequest {
    /// One of the configured tables.
    pub table: String,
    /// The record's id (string or integer). Defaults to `data.id`, then a new UUID.
    #[schema(value_type = Option<String>)]
    pub id: Option<Value>,
    /// The record: any JSON object.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// Where and how the record was stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct WriteResponse {
    pub shard: u32,
    pub table: String,
    pub id: String,
    /// Grows with every write of the record (and never repeats, even after a delete).
    pub version: i64,
    /// True when this write created the record, false when it replaced it.
    pub created: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Read-your-writes token (also in the `x-shard-lsn` header): send it back in
    /// `x-min-lsn` and the read is served by a server that has this write.
    #[schema(example = "1:0/3000060")]
    pub lsn: String,
    /// With `x-durability: replica`: the replica that applied the write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicated_to: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/write",
    tag = "records",
    request_body = WriteRequest,
    params(
        ("x-shard-key" = String, Header, description = "Shard key: 1 to 256 bytes of UTF-8"),
        ("x-durability" = Option<String>, Header, description = "`primary` (default) or `replica`: also wait until a replica applied the write"),
    ),
    responses(
        (status = 201, description = "Created", body = WriteResponse),
        (status = 200, description = "Replaced an existing record", body = WriteResponse),
        (status = 400, description = "Missing or invalid shard key, malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown table, `data` not an object, bad id", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The shard's primary is unavailable", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The shard did not answer in time, or (x-durability: replica) no replica applied the write in time", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn write(
    state: web::Data<AppState>,
    key: ShardKeyHeader,
    durability: Durability,
    body: web::Json<WriteRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let table = state.cluster.tables().parse(&body.table)?;
    let data = Document::parse(body.data)?;
    let id = data.derive_id(body.id.as_ref())?;
    let written = state
        .bounded(state.cluster.write(&table, &key.0, id, data))
        .await?;
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
    Outcome::write(written.shard, Role::Primary, 1).attach(&mut res);
    Ok(res)
}
