//! `POST /api/query`: a table's records that match conditions on JSON paths, sorted by
//! fields, a page at a time across every shard, with only the fields asked and, when
//! asked, how many match. The query is typed and checked here once
//! (`shard_manager::store::query`: every fault a 400 naming it), then run by
//! `Cluster::query`, or at `snapshot` `Cluster::query_at_cut` (every shard at one cut,
//! its pages too: `routes::snapshot`). Never partial: a shard that fails fails the
//! query (503 naming it).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use shard_manager::store::query::{
    project, Condition, CountMode, Direction, FieldPath, Query, QueryCursor, SortField,
};
use shard_manager::store::RawJson;
use shard_manager::Consistency;
use utoipa::ToSchema;

use super::list::DEFAULT_LIMIT;
use super::snapshot::asks_snapshot;
use crate::access::Caller;
use crate::edge::observe::Outcome;
use crate::error::{ApiError, Problem};
use crate::input::body::CutBody;
use crate::input::body::{RecordBody, ShardRecord, ShardSource};
use crate::input::json_body::{Bounded, BoundedJson};
use crate::limits::Quota;
use crate::state::AppState;

/// A query.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"table": "users",
    "filter": [{"field": "age", "op": "gte", "value": 40},
               {"field": "address.city", "op": "in", "value": ["London", "Paris"]}],
    "sort": [{"field": "score", "order": "desc"}],
    "fields": ["name", "score"], "limit": 50, "count": "exact"}))]
pub struct QueryRequest {
    /// One of the configured tables.
    #[schema(example = "users")]
    pub table: String,
    /// Conditions that must all hold (at most 20).
    #[serde(default)]
    pub filter: Vec<ConditionBody>,
    /// Sort fields, most significant first (at most 4); ties are broken by shard key,
    /// then id. Empty: by shard key and id.
    #[serde(default)]
    pub sort: Vec<SortBody>,
    /// Dotted paths of the fields to return in each record's `data` (at most 32);
    /// absent: whole records.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// 1 to 10000 (default 10); a page also stops at the read budget.
    #[serde(default)]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 10000, example = 50)]
    pub limit: Option<Value>,
    /// The `next` of the previous page, unchanged, with the same query. A snapshot
    /// query's reads the same cut, through any gateway, for 5 s from its first page,
    /// and is refused with another table, filter or sort.
    #[serde(default)]
    pub cursor: Option<String>,
    /// `exact` (every shard counts) or `estimated` (every shard's planner estimates):
    /// the answer's `total`.
    #[serde(default)]
    #[schema(example = "exact")]
    pub count: Option<String>,
    /// `eventual` (default), `strong`, or `snapshot` (every shard read at one cut, so
    /// no transaction on several shards is seen half committed; its pages too), in any
    /// case.
    #[serde(default)]
    #[schema(example = "eventual")]
    pub consistency: Option<String>,
    /// true: the answer's `plans` holds each shard's plan of its page, so you can see
    /// which index served it.
    #[serde(default)]
    pub explain: bool,
}

/// One condition.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConditionBody {
    /// A dotted path into the record's JSON, e.g. `address.city`.
    #[schema(example = "age")]
    pub field: String,
    /// `eq ne gt gte lt lte in nin exists prefix contains`.
    #[schema(example = "gte")]
    pub op: String,
    /// What `op` compares with: any JSON for `eq`, `ne` and `contains`; an array for
    /// `in` and `nin`; a number or a string for `gt`, `gte`, `lt`, `lte`; a string for
    /// `prefix`; true (default) or false for `exists`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Object, example = 40)]
    pub value: Option<Value>,
}

/// A `value` that is there, `null` included (absent is None).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// One sort field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SortBody {
    #[schema(example = "score")]
    pub field: String,
    /// `asc` (default) or `desc`.
    #[serde(default)]
    #[schema(example = "desc")]
    pub order: Option<String>,
}

impl Bounded for QueryRequest {}

/// A page of a query.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryResponse {
    /// Records on this page.
    pub count: usize,
    /// In the query's order, each with its shard; `data` holds only `fields` when
    /// they were asked.
    pub records: Vec<ShardRecord>,
    /// The cursor of the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// With `count`: how many records match (every shard's, summed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Every shard that answered and the role that served it.
    pub shards: Vec<ShardSource>,
    /// With `explain`: each shard's plan of its page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plans: Option<Vec<ShardPlan>>,
    /// With `snapshot`: the cut every record (and `total`) was read at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<CutBody>,
}

/// One shard's plan: PostgreSQL's `EXPLAIN (FORMAT JSON)` of the page statement it ran,
/// with the same parameters, on the server that answered (an index it used shows as
/// `"Index Name"` in an `Index Scan` or `Bitmap Index Scan` node).
#[derive(Debug, Serialize, ToSchema)]
pub struct ShardPlan {
    pub shard: u32,
    #[schema(value_type = Object)]
    pub plan: Value,
}

/// The query a request asks, checked.
fn parse(request: &QueryRequest, max_bytes: usize) -> Result<Query, ApiError> {
    let filter = request
        .filter
        .iter()
        .map(|c| Condition::parse(&c.field, &c.op, c.value.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let sort = request
        .sort
        .iter()
        .map(|s| {
            Ok(SortField {
                path: FieldPath::parse(&s.field)?,
                direction: Direction::parse(&s.field, s.order.as_deref())?,
            })
        })
        .collect::<Result<Vec<_>, shard_manager::store::query::QueryError>>()?;
    let fields = request
        .fields
        .as_ref()
        .map(|f| f.iter().map(|f| FieldPath::parse(f)).collect())
        .transpose()?;
    let limit = request
        .limit
        .clone()
        .unwrap_or_else(|| Value::from(DEFAULT_LIMIT));
    let mut query = Query::new(filter, sort, fields, &limit)?;
    query.after = request
        .cursor
        .as_deref()
        .map(|c| QueryCursor::decode(c, query.sort.len()))
        .transpose()?;
    query.count = request.count.as_deref().map(CountMode::parse).transpose()?;
    query.max_bytes = max_bytes;
    query.explain = request.explain;
    Ok(query)
}

#[utoipa::path(
    post,
    path = "/api/query",
    tag = "records",
    request_body = QueryRequest,
    responses(
        (status = 200, description = "A page of the records that match, in the query's order, with `next` when more follow and `total` when `count` was asked; with consistency `snapshot`, the cut it was read at (`snapshot`)", body = QueryResponse),
        (status = 400, description = "(`invalid-query`, the detail names it) An unknown operator or sort order, a bad path, a value its operator cannot compare, a `limit` out of 1..10000, a bad cursor, a snapshot query's cursor sent with another table, filter or sort, too many conditions, sort fields or fields, a field named twice, an unknown `count`; (`invalid-consistency`) an unknown consistency", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "(`snapshot-expired`) A snapshot query's `cursor` whose cut is no longer held (kept 5 s from its first page): start the query again", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large a body", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not labelled JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown table, or a body of another shape (an unknown member, a value of the wrong type)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the API key's rate or its queries at once on a shard (a query touches every shard), or (`snapshots-held`) at `snapshot` the key holds its share (half) of the gateway's snapshots for next pages", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "A shard did not answer (the problem names it); at `snapshot`, (`snapshot-unavailable`) the cluster fence could not be taken, or (`snapshots-busy`) the gateway holds its most snapshots for next pages (a quarter of `database.pool_max_size`)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "A shard did not answer in time", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn query(
    state: web::Data<AppState>,
    (caller, quota): (Caller, Quota),
    body: BoundedJson<QueryRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut request = body.0;
    let table = state.cluster.tables().parse(&request.table)?;
    caller.permit(&table)?;
    // None: `snapshot`, every shard at one cut.
    let plain = match request.consistency.as_deref() {
        raw if asks_snapshot(raw) => None,
        Some(raw) => Some(Consistency::parse(raw)?),
        None => Some(Consistency::Eventual),
    };
    // A snapshot query's cursor names its cut, and is read by the snapshot's own rules.
    let page = match plain {
        None => request.cursor.take(),
        Some(_) => None,
    };
    let query = parse(&request, state.server.max_read_bytes)?;
    let _permits = quota
        .enter(state.cluster.shards().iter().map(|s| s.id))
        .await?;
    let (answer, next, cut) = match plain {
        None => {
            let at = state
                .bounded(state.cluster.query_at_cut(
                    &table,
                    &query,
                    page.as_deref(),
                    caller.key_name(),
                ))
                .await?;
            (at.answer, at.next, Some(CutBody::from(at.cut)))
        }
        Some(consistency) => {
            let answer = state
                .bounded(state.cluster.query(&table, &query, consistency))
                .await?;
            let next = answer.next.as_ref().map(|c| c.encode());
            (answer, next, None)
        }
    };
    let rows = answer.rows.len() as u64;
    let records = answer
        .rows
        .into_iter()
        .map(|(shard, row)| {
            let mut record = row.record;
            if let Some(fields) = &query.fields {
                record.data = RawJson::from_value(&project(&record.data.to_value(), fields));
            }
            ShardRecord::new(shard, RecordBody::from(record))
        })
        .collect::<Vec<_>>();
    let mut res = HttpResponse::Ok().json(QueryResponse {
        count: records.len(),
        records,
        next,
        total: answer.total,
        shards: ShardSource::answered(&answer.answered),
        plans: query.explain.then(|| {
            answer
                .plans
                .into_iter()
                .map(|(shard, plan)| ShardPlan {
                    shard: shard.0,
                    plan,
                })
                .collect()
        }),
        snapshot: cut,
    });
    Outcome {
        rows_read: rows,
        ..Outcome::default()
    }
    .attach(&mut res);
    Ok(res)
}
