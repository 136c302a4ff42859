//! Lists: one shard key's records, or (without a key) every shard's, merged. Both take
//! `limit`, a `where` JSON containment filter and a `cursor` for the next page; a page
//! also stops at `server.max_read_bytes` of records (its first record always fits),
//! with `next` set, so no list holds more than that whatever its records weigh.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::value::RawValue;
use serde_json::Value;
use shard_manager::store::{Page, RawJson};
use shard_manager::{Consistency, Cursor, ListQuery, RoutedKey, TableName};

use crate::edge::observe::Outcome;
use crate::error::ApiError;
use crate::input::body::{
    FanOutResponse, ListResponse, ReadParams, RecordBody, ShardFailure, ShardRecord, ShardSource,
    TaggedRecord,
};
use crate::server::headers::PARTIAL_RESULTS;
use crate::state::AppState;

pub const MAX_LIMIT: u32 = 1000;
pub const DEFAULT_LIMIT: u32 = 10;
/// Largest `where` filter accepted, in bytes.
pub const MAX_FILTER_BYTES: usize = 4096;

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

/// `where`: a JSON object the record's data must contain, kept as the text sent and
/// checked as a written document is (every digit kept; a NUL or a number `jsonb`
/// cannot hold is refused, naming it).
fn parse_filter(raw: Option<&str>) -> Result<Option<RawJson>, ApiError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    if raw.len() > MAX_FILTER_BYTES {
        return Err(ApiError::BadQuery(format!(
            "`where` is {} bytes; at most {MAX_FILTER_BYTES} are allowed",
            raw.len()
        )));
    }
    // Read whole once (at most 4096 bytes), so that what a raw read lets through, such
    // as a lone surrogate escape, is refused here, as it is in a body.
    let is_object = matches!(serde_json::from_str::<Value>(raw), Ok(Value::Object(_)));
    match serde_json::from_str::<Box<RawValue>>(raw) {
        Ok(text) if is_object => Ok(Some(shard_manager::Document::parse_raw(text)?.into_raw())),
        _ => Err(ApiError::BadQuery(
            "`where` must be a JSON object, e.g. {\"grade\":\"A\"}".into(),
        )),
    }
}

/// The list part of a read's parameters, and the byte budget of its page.
pub fn query(params: &ReadParams, max_bytes: usize) -> Result<ListQuery, ApiError> {
    Ok(ListQuery {
        limit: parse_limit(params.limit.as_deref())?,
        max_bytes,
        filter: parse_filter(params.filter.as_deref())?,
        after: params
            .cursor
            .as_deref()
            .map(Cursor::decode)
            .transpose()
            .map_err(|e| ApiError::BadQuery(e.to_string()))?,
    })
}

pub async fn keyed(
    state: &AppState,
    table: &TableName,
    key: &RoutedKey,
    query: ListQuery,
    consistency: Consistency,
) -> Result<HttpResponse, ApiError> {
    let served = state
        .bounded(state.cluster.list(table, key, &query, consistency))
        .await?;
    let next = next_cursor(&served.value, query.limit);
    let records: Vec<TaggedRecord> = served
        .value
        .records
        .into_iter()
        .map(|r| RecordBody::from(r).into())
        .collect();
    let rows = records.len() as u64;
    let mut res = HttpResponse::Ok().json(ListResponse {
        shard: served.shard.0,
        source: served.role.as_str().to_owned(),
        count: records.len(),
        records,
        next,
    });
    Outcome::read(served.shard, served.role, rows).attach(&mut res);
    Ok(res)
}

/// Where the next page starts: after a full page, or one cut short by the byte budget.
fn next_cursor(page: &Page, limit: u32) -> Option<String> {
    (page.cut || page.records.len() == limit as usize)
        .then(|| page.records.last().map(|r| Cursor::after(r).encode()))
        .flatten()
}

pub async fn fan_out(
    state: &web::Data<AppState>,
    table: &TableName,
    query: ListQuery,
    consistency: Consistency,
    require_all: bool,
) -> Result<HttpResponse, ApiError> {
    let out = state
        .bounded(async {
            Ok::<_, ApiError>(state.cluster.fan_out(table, &query, consistency).await)
        })
        .await?;
    let failed: Vec<ShardFailure> = out
        .failed
        .iter()
        .map(|e| ShardFailure {
            shard: e.shard().0,
            error: e.to_string(),
        })
        .collect();
    if require_all && !failed.is_empty() {
        return Err(ApiError::ShardsMissing(
            failed.into_iter().map(|f| f.error).collect(),
        ));
    }
    let partial = !failed.is_empty();
    let rows = out.records.len() as u64;
    let body = FanOutResponse {
        partial,
        count: out.records.len(),
        records: out
            .records
            .into_iter()
            .map(|(shard, r)| ShardRecord::new(shard, r.into()))
            .collect(),
        shards: ShardSource::answered(&out.answered),
        failed_shards: failed,
        next: out.next.map(|c| c.encode()),
        snapshot: None,
    };
    let mut res = if partial {
        HttpResponse::build(StatusCode::PARTIAL_CONTENT)
            .insert_header((PARTIAL_RESULTS, "true"))
            .json(body)
    } else {
        HttpResponse::Ok().json(body)
    };
    Outcome {
        rows_read: rows,
        ..Outcome::default()
    }
    .attach(&mut res);
    Ok(res)
}
