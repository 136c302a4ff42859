//! `GET /api/read`: one record by id, or a shard key's newest records.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use shard_manager::cache::CacheEvent;
use shard_manager::{Consistency, Record, RecordId};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Problem};
use crate::extract::{ConsistencyHeader, MinLsnHeader, ShardKeyHeader};
use crate::observe::Outcome;
use crate::state::AppState;

pub const MAX_LIMIT: u32 = 1000;
pub const X_CACHE: &str = "x-cache";

fn cache_header(event: CacheEvent) -> &'static str {
    match event {
        CacheEvent::Hit => "hit",
        CacheEvent::Miss => "miss",
        _ => "bypass",
    }
}
pub const DEFAULT_LIMIT: u32 = 10;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadParams {
    /// One of the configured tables.
    pub table: String,
    /// A record id: read that record. Without it: list the key's records.
    pub id: Option<String>,
    /// How many records a list returns, 1 to 1000 (default 10).
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// `eventual` (default: a replica) or `strong` (the primary). Wins over `x-consistency`.
    pub consistency: Option<String>,
}

/// A stored record.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordBody {
    pub table: String,
    pub shard_key: String,
    pub id: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub version: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<Record> for RecordBody {
    fn from(r: Record) -> Self {
        Self {
            table: r.table_name,
            shard_key: r.shard_key,
            id: r.id,
            data: r.data,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A point read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadResponse {
    pub shard: u32,
    /// What answered: `replica`, `primary` or `cache`.
    pub source: String,
    pub record: RecordBody,
}

/// A list read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListResponse {
    pub shard: u32,
    pub source: String,
    pub count: usize,
    pub records: Vec<RecordBody>,
}

#[utoipa::path(
    get,
    path = "/api/read",
    tag = "records",
    params(
        ReadParams,
        ("x-shard-key" = String, Header, description = "Shard key: 1 to 256 bytes of UTF-8"),
        ("x-consistency" = Option<String>, Header, description = "`eventual` (default) or `strong`"),
        ("x-min-lsn" = Option<String>, Header, description = "Read-your-writes token from a write's `x-shard-lsn`: the read is served by a server that has that write"),
    ),
    responses(
        (status = 200, description = "The record (with `id`) or a list (without). Point reads carry `x-cache: hit|miss|bypass` when the cache is enabled.", body = ReadResponse),
        (status = 400, description = "Missing or invalid shard key or parameters", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such record", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown table", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No server of the shard is available", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The shard did not answer in time", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn read(
    state: web::Data<AppState>,
    key: ShardKeyHeader,
    header: ConsistencyHeader,
    token: MinLsnHeader,
    params: web::Query<ReadParams>,
) -> Result<HttpResponse, ApiError> {
    let params = params.into_inner();
    let table = state.cluster.tables().parse(&params.table)?;
    let asked = match params.consistency.as_deref() {
        Some(text) => Some(Consistency::parse(text)?),
        None => header.0,
    };
    let shard = state.cluster.locate(&key.0).shard;
    let consistency = match (asked, token.0) {
        (Some(Consistency::Strong), _) => Consistency::Strong,
        // A token names a write on one shard; for a key on another shard it says nothing.
        (_, Some(t)) if t.shard == shard => Consistency::ReadYourWrites(t.lsn),
        (asked, _) => asked.unwrap_or_default(),
    };
    if let Some(id) = params.id {
        let id = RecordId::parse(&id)?;
        let served = state
            .bounded(state.cluster.read(&table, &key.0, &id, consistency))
            .await?;
        state.record_cache(&served.cache);
        let Some(record) = served.value else {
            return Err(ApiError::RecordNotFound {
                table: params.table,
                id: id.as_str().to_owned(),
            });
        };
        let source = if served.from_cache {
            "cache"
        } else {
            served.role.as_str()
        };
        let mut builder = HttpResponse::Ok();
        if let Some(status) = served.cache.status() {
            builder.insert_header((X_CACHE, cache_header(status)));
        }
        let mut res = builder.json(ReadResponse {
            shard: served.shard.0,
            source: source.to_owned(),
            record: record.into(),
        });
        let outcome = Outcome::read(served.shard, served.role, 1);
        if served.from_cache {
            outcome.from_cache().attach(&mut res);
        } else {
            outcome.attach(&mut res);
        }
        return Ok(res);
    }
    let limit = parse_limit(params.limit.as_deref())?;
    let served = state
        .bounded(state.cluster.list(&table, &key.0, limit, consistency))
        .await?;
    let records: Vec<RecordBody> = served.value.into_iter().map(Into::into).collect();
    let rows = records.len() as u64;
    let mut res = HttpResponse::Ok().json(ListResponse {
        shard: served.shard.0,
        source: served.role.as_str().to_owned(),
        count: records.len(),
        records,
    });
    Outcome::read(served.shard, served.role, rows).attach(&mut res);
    Ok(res)
}

/// `limit`: absent means the default; anything but 1..=1000 is named back to the client.
pub fn parse_limit(raw: Option<&str>) -> Result<u32, ApiError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    match raw.parse::<u32>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::BadQuery(format!(
            "limit is {:?}; use a whole number from 1 to {MAX_LIMIT}",
            raw.chars().take(32).collect::<String>()
        ))),
    }
}
