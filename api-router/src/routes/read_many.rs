//! `POST /api/read-many`: many point reads in one request, on any shards, at one
//! consistency: `eventual` (default) and `strong` read each record as `GET /api/read`
//! would; `snapshot` reads them all at one cut, so no transaction on several shards is
//! seen half committed. Every read is answered: found, or named in `missing`.
//!
//! The answer is held to the read budget (`server.max_read_bytes`, the bound of a
//! list's page): every record counted as often as it is asked. One past it is refused
//! (413 `read-budget`, naming the read that passed it), never cut; a record read twice
//! is read from its shard once. See `shard_manager::store::answer_budget`.

use actix_web::{web, HttpResponse};
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use shard_manager::cluster::snapshot::CutRead;
use shard_manager::cluster::snapshot::SnapshotError;
use shard_manager::store::answer_budget::WAVE;
use shard_manager::store::{AnswerBudget, OverBudget};
use shard_manager::{Consistency, Found, RecordId, Router, ShardKey, TableName};
use utoipa::ToSchema;

use super::snapshot::asks_snapshot;
use crate::access::Caller;
use crate::edge::observe::Outcome;
use crate::error::{ApiError, Problem};
use crate::input::body::CutBody;
use crate::input::body::RecordBody;
use crate::input::conditional;
use crate::input::json_body::{Bounded, BoundedJson};
use crate::input::json_limits::JsonLimits;
use crate::limits::Quota;
use crate::server::settings::ServerSettings;
use crate::state::AppState;

/// The most reads one request may carry.
pub const MAX_READS: usize = 100;

/// Reads to answer together.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reads": [
    {"table": "users", "shard_key": "alice", "id": "alice"},
    {"table": "users", "shard_key": "bob", "id": "bob"}
], "consistency": "snapshot"}))]
pub struct ReadManyRequest {
    /// 1 to 100 reads, each a record's full identity.
    pub reads: Vec<ReadItem>,
    /// `eventual` (default), `strong` or `snapshot` (all reads at one cut), in any case.
    #[serde(default)]
    #[schema(example = "snapshot")]
    pub consistency: Option<String>,
}

/// One record to read.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadItem {
    #[schema(example = "users")]
    pub table: String,
    /// The record's shard key (1 to 256 bytes of UTF-8).
    #[schema(value_type = String, example = "alice")]
    pub shard_key: Value,
    /// The record's id (string or integer).
    #[schema(value_type = String, example = "alice")]
    pub id: Value,
}

impl Bounded for ReadManyRequest {
    fn max_bytes(server: &ServerSettings) -> usize {
        server.max_body_bytes
    }

    fn limits(server: &ServerSettings) -> JsonLimits {
        JsonLimits {
            max_depth: server.max_json_depth,
            max_values: server.max_bulk_json_values,
            counted_array: None,
        }
    }
}

/// Every read's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadManyResponse {
    /// The consistency the reads were served at.
    #[schema(example = "snapshot")]
    pub consistency: String,
    /// How many reads were asked.
    pub count: usize,
    /// The records found, each with its read's index.
    pub records: Vec<FoundRecord>,
    /// The reads that found no record, each named.
    pub missing: Vec<MissingRecord>,
    /// With `snapshot`: the cut every record was read at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<CutBody>,
}

/// A record found.
#[derive(Debug, Serialize, ToSchema)]
pub struct FoundRecord {
    /// The read's position in `reads`.
    pub index: usize,
    pub shard: u32,
    /// `primary`, `replica` or `cache`.
    pub source: String,
    /// The record's entity tag, as `GET /api/read` answers it for this version: send it
    /// as `If-Match` to write the record only if no write came between.
    #[schema(example = "\"3.9f8e0c2d4b6a81735e2f0a9c3d4b5e6f\"")]
    pub etag: String,
    #[schema(value_type = RecordBody)]
    pub record: Box<RawValue>,
}

/// A read that found no record.
#[derive(Debug, Serialize, ToSchema)]
pub struct MissingRecord {
    pub index: usize,
    pub table: String,
    pub shard_key: String,
    pub id: String,
    pub shard: u32,
}

/// How the reads are served.
enum Level {
    Plain(Consistency),
    Snapshot,
}

#[utoipa::path(
    post,
    path = "/api/read-many",
    tag = "records",
    request_body = ReadManyRequest,
    responses(
        (status = 200, description = "Every read answered: the records found (`records`, each with its read's `index`) and the reads that found none (`missing`, each named); with `snapshot`, the cut they were all read at", body = ReadManyResponse),
        (status = 400, description = "Malformed JSON, or an unknown `consistency`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "(`too-many-reads`) More than 100 reads, or too large a body; (`read-budget`, `operation` is the read that passed it) the records found come to more than `server.max_read_bytes`, each counted as often as it is asked", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not labelled JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "(`invalid-read`, `operation` is its index) An unknown table, a bad shard key or id; (`no-reads`) `reads` is empty; or a body of another shape", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the API key's rate or its queries at once on a shard", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "A shard needed did not answer (the problem names it), or (`snapshot-unavailable`) the cluster fence in the metadata database could not be taken", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "A shard did not answer in time", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn read_many(
    state: web::Data<AppState>,
    (caller, quota): (Caller, Quota),
    body: BoundedJson<ReadManyRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.0;
    let level = match request.consistency.as_deref() {
        raw if asks_snapshot(raw) => Level::Snapshot,
        Some(raw) => Level::Plain(Consistency::parse(raw)?),
        None => Level::Plain(Consistency::Eventual),
    };
    let reads = {
        let router = state.cluster.router();
        parse_reads(&request.reads, &state, &router)?
    };
    for read in &reads {
        caller.permit(&read.table)?;
    }
    let _permits = quota.enter(reads.iter().map(|r| r.key.shard())).await?;
    // Each distinct record read once; the answer counts it as often as it is asked.
    let asked = Distinct::of(&reads);
    let mut budget = AnswerBudget::new(state.server.max_read_bytes, asked.times());
    let over = |o: OverBudget| ApiError::ReadBudget {
        max_bytes: o.max_bytes,
        index: asked.first_asked(o.index),
    };
    let (distinct, consistency, snapshot) = match level {
        Level::Snapshot => {
            let read = state.cluster.read_many_at_cut(&asked.reads, &mut budget);
            let read = async {
                read.await.map_err(|e| match e {
                    SnapshotError::OverBudget(o) => over(o),
                    e => ApiError::from(e),
                })
            };
            let (found, cut) = state.bounded(read).await?;
            let answers = found
                .into_iter()
                .map(|(shard, record)| Answer {
                    shard: shard.0,
                    source: "primary",
                    record: record.map(Found::Stored),
                })
                .collect();
            (answers, "snapshot", Some(CutBody::from(cut)))
        }
        Level::Plain(consistency) => {
            let read = plain(&state, &asked.reads, consistency, &mut budget, over);
            let answers = state.bounded(read).await?;
            let name = match consistency {
                Consistency::Strong => "strong",
                _ => "eventual",
            };
            (answers, name, None)
        }
    };
    let answers = asked.spread(distinct);
    let mut records = Vec::new();
    let mut missing = Vec::new();
    for (index, (read, answer)) in reads.iter().zip(answers).enumerate() {
        match answer.record {
            Some(found) => records.push(FoundRecord {
                index,
                shard: answer.shard,
                source: answer.source.to_owned(),
                etag: conditional::etag(
                    (read.table.as_str(), read.key.as_str(), read.id.as_str()),
                    found.version(),
                ),
                record: raw_record(found)?,
            }),
            None => missing.push(MissingRecord {
                index,
                table: read.table.as_str().to_owned(),
                shard_key: read.key.as_str().to_owned(),
                id: read.id.as_str().to_owned(),
                shard: answer.shard,
            }),
        }
    }
    let rows = records.len() as u64;
    let mut res = HttpResponse::Ok().json(ReadManyResponse {
        consistency: consistency.to_owned(),
        count: reads.len(),
        records,
        missing,
        snapshot,
    });
    Outcome {
        rows_read: rows,
        ..Outcome::default()
    }
    .attach(&mut res);
    Ok(res)
}

/// One read's answer.
#[derive(Clone)]
struct Answer {
    shard: u32,
    source: &'static str,
    record: Option<Found>,
}

/// The distinct reads of a request, and which of them each read asks.
struct Distinct {
    reads: Vec<CutRead>,
    /// For each read of the request, its distinct read.
    of: Vec<usize>,
}

impl Distinct {
    fn of(all: &[CutRead]) -> Self {
        let mut seen: std::collections::HashMap<(&str, &str, &str), usize> = Default::default();
        let mut reads = Vec::new();
        let mut of = Vec::with_capacity(all.len());
        for read in all {
            let identity = (read.table.as_str(), read.key.as_str(), read.id.as_str());
            let at = *seen.entry(identity).or_insert_with(|| {
                reads.push(read.clone());
                reads.len() - 1
            });
            of.push(at);
        }
        Self { reads, of }
    }

    /// How many times each distinct read is asked.
    fn times(&self) -> Vec<usize> {
        let mut times = vec![0; self.reads.len()];
        for at in &self.of {
            times[*at] += 1;
        }
        times
    }

    /// The request's first read that asks distinct read `distinct`.
    fn first_asked(&self, distinct: usize) -> usize {
        self.of.iter().position(|at| *at == distinct).unwrap_or(0)
    }

    /// The distinct reads' answers, one for each read of the request.
    fn spread(&self, answers: Vec<Answer>) -> Vec<Answer> {
        self.of
            .iter()
            .filter_map(|at| answers.get(*at).cloned())
            .collect()
    }
}

/// Each read as `GET /api/read` does it, [`WAVE`] at a time, each record counted into
/// `budget` as it comes (see the module doc); past it, the answer is `over`'s.
async fn plain(
    state: &AppState,
    reads: &[CutRead],
    consistency: Consistency,
    budget: &mut AnswerBudget,
    over: impl Fn(OverBudget) -> ApiError,
) -> Result<Vec<Answer>, ApiError> {
    let mut answers = Vec::with_capacity(reads.len());
    for (wave, chunk) in reads.chunks(WAVE).enumerate() {
        let served = join_all(
            chunk
                .iter()
                .map(|r| state.cluster.read(&r.table, &r.key, &r.id, consistency)),
        )
        .await;
        for (i, served) in served.into_iter().enumerate() {
            let served = served?;
            state.record_cache(&served.cache);
            if let Some(found) = &served.value {
                budget
                    .admit(wave * WAVE + i, found.bytes())
                    .map_err(&over)?;
            }
            answers.push(Answer {
                shard: served.shard.0,
                source: match (served.from_cache, served.role) {
                    (true, _) => "cache",
                    (false, role) => role.as_str(),
                },
                record: served.value,
            });
        }
    }
    Ok(answers)
}

/// A found record as JSON, as `GET /api/read` sends it.
fn raw_record(found: Found) -> Result<Box<RawValue>, ApiError> {
    let raw = match found {
        Found::Stored(record) => serde_json::value::to_raw_value(&RecordBody::from(record)),
        Found::Cached(cached) => RawValue::from_string(cached.json),
    };
    raw.map_err(|_| ApiError::Misconfigured("a record could not be written as JSON"))
}

/// The reads, parsed and routed, or the first problem, naming its read.
fn parse_reads(
    items: &[ReadItem],
    state: &AppState,
    router: &Router,
) -> Result<Vec<CutRead>, ApiError> {
    if items.is_empty() {
        return Err(ApiError::NoReads);
    }
    if items.len() > MAX_READS {
        return Err(ApiError::TooManyReads { limit: MAX_READS });
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let bad = |reason: String| ApiError::Read { index, reason };
            let table: TableName = state
                .cluster
                .tables()
                .parse(&item.table)
                .map_err(|e| bad(e.to_string()))?;
            let key = match &item.shard_key {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(bad("`shard_key` must be a string".into())),
            };
            let key = ShardKey::parse(&key).map_err(|e| bad(e.to_string()))?;
            let key = router.route(key).map_err(|e| bad(e.to_string()))?;
            let id = RecordId::from_json(&item.id).map_err(|e| bad(e.to_string()))?;
            Ok(CutRead { table, key, id })
        })
        .collect()
}
