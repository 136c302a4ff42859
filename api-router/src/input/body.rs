//! The JSON bodies and query parameters of the record endpoints, in one place: what
//! clients send (`WriteRequest`, `BulkRequest`, `ReadParams`, `DeleteParams`) and what
//! they get back (`RecordBody` and the responses built on it). The OpenAPI document is
//! generated from these types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use shard_manager::cluster::bulk::BulkFailure;
use shard_manager::cluster::snapshot::Cut;
use shard_manager::store::RawJson;
use shard_manager::{Record, Role, ShardId};
use utoipa::{IntoParams, ToSchema};

use super::conditional;
use super::json_body::Bounded;
use super::json_limits::JsonLimits;
use crate::server::settings::ServerSettings;

impl Bounded for WriteRequest {}

impl Bounded for BulkRequest {
    fn max_bytes(server: &ServerSettings) -> usize {
        server.max_bulk_body_bytes
    }

    fn limits(server: &ServerSettings) -> JsonLimits {
        JsonLimits {
            max_depth: server.max_json_depth,
            max_values: server.max_bulk_json_values,
            counted_array: Some(("records", server.max_batch_records)),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadParams {
    /// One of the configured tables.
    #[param(example = "users")]
    pub table: String,
    /// A record id: read that record (needs `x-shard-key`). Without it: a list.
    #[param(example = "user_123")]
    pub id: Option<String>,
    /// How many records a list returns, 1 to 1000 (default 10). A page holds fewer,
    /// with `next` set, when its records reach `server.max_read_bytes` (8 MiB by default).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000, example = 10)]
    pub limit: Option<String>,
    /// `eventual` (default: a replica) or `strong` (the primary), in any case; or
    /// `snapshot`: a fan-out list read at one cut across shards. Wins over
    /// `x-consistency`.
    #[param(value_type = Option<ConsistencyName>, inline)]
    pub consistency: Option<String>,
    /// Lists: only records whose data contains this JSON object, e.g. `{"grade":"A"}`
    /// (at most 4096 bytes).
    #[serde(rename = "where")]
    #[param(rename = "where", example = r#"{"grade":"A"}"#)]
    pub filter: Option<String>,
    /// Lists: the `next` value of the previous page. A snapshot list's reads the same
    /// cut, through any gateway, for 5 s from its first page.
    pub cursor: Option<String>,
}

/// The consistency a client may ask for, by name (the gateway ignores case).
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ConsistencyName {
    /// A replica that is not too far behind (the default).
    Eventual,
    /// The shard's primary.
    Strong,
    /// Reads across shards (a fan-out list, `POST /api/read-many`, `POST /api/query`)
    /// at one cut: no transaction on several shards half seen. One key's read: as
    /// `strong`.
    Snapshot,
}

/// A record id as a client may send it: a string of 1 to 256 bytes, or an integer
/// (kept as its decimal text).
fn record_id_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ObjectBuilder::new().schema_type(Type::Integer))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some(
            "The record's id (string or integer). Defaults to `data.id`, then a new UUID.",
        ))
        .into()
}

/// A stored record.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordBody {
    pub table: String,
    pub shard_key: String,
    pub id: String,
    /// The document, sent as stored (never parsed into a tree on the way).
    #[schema(value_type = Object)]
    pub data: RawJson,
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

/// What `GET /api/read` answers with 200: a point read (with `id`), one key's records
/// (with `x-shard-key`, without `id`) or every shard's (without either). Only the
/// OpenAPI document uses this type: the handlers send the three bodies themselves.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ReadAnswer {
    Record(ReadResponse),
    List(ListResponse),
    FanOut(FanOutResponse),
}

/// One key's records.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListResponse {
    pub shard: u32,
    pub source: String,
    pub count: usize,
    pub records: Vec<TaggedRecord>,
    /// Pass as `cursor` for the next page; absent on the last page. A page cut short by
    /// the byte budget has fewer than `limit` records and still a `next`.
    pub next: Option<String>,
}

/// A record of a list, with its entity tag.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaggedRecord {
    #[serde(flatten)]
    pub record: RecordBody,
    /// The record's entity tag, as `GET /api/read` answers it for this version: send it
    /// as `If-Match` to write the record only if no write came between.
    #[schema(example = "\"3.9f8e0c2d4b6a81735e2f0a9c3d4b5e6f\"")]
    pub etag: String,
}

impl From<RecordBody> for TaggedRecord {
    fn from(record: RecordBody) -> Self {
        let identity = (
            record.table.as_str(),
            record.shard_key.as_str(),
            record.id.as_str(),
        );
        Self {
            etag: conditional::etag(identity, record.version),
            record,
        }
    }
}

/// A record of a fan-out or a query, with its shard and its entity tag.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShardRecord {
    pub shard: u32,
    #[serde(flatten)]
    pub record: TaggedRecord,
}

impl ShardRecord {
    pub fn new(shard: ShardId, record: RecordBody) -> Self {
        Self {
            shard: shard.0,
            record: record.into(),
        }
    }
}

/// Which role answered for a shard.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShardSource {
    pub shard: u32,
    pub source: String,
}

impl ShardSource {
    /// Each shard that answered and the role that served it, in the order given.
    pub fn answered(answered: &[(ShardId, Role)]) -> Vec<Self> {
        answered
            .iter()
            .map(|(shard, role)| Self {
                shard: shard.0,
                source: role.as_str().to_owned(),
            })
            .collect()
    }
}

/// A shard that did not answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShardFailure {
    pub shard: u32,
    pub error: String,
}

/// Every shard's records, merged newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct FanOutResponse {
    /// True when some shards did not answer: the records are incomplete.
    pub partial: bool,
    pub count: usize,
    pub records: Vec<ShardRecord>,
    pub shards: Vec<ShardSource>,
    pub failed_shards: Vec<ShardFailure>,
    pub next: Option<String>,
    /// With `consistency=snapshot`: the cut every record was read at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<CutBody>,
}

/// A record to write.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"table": "users", "data": {"user_id": "user_123", "name": "John Doe", "email": "john@example.com", "partition_key": "A"}}))]
pub struct WriteRequest {
    /// One of the configured tables.
    pub table: String,
    /// The record's id (string or integer). Defaults to `data.id`, then a new UUID.
    #[schema(schema_with = record_id_schema)]
    pub id: Option<Value>,
    /// The record: any JSON object. Kept as the text sent (checked, never built into a
    /// tree) and stored as it is.
    #[schema(value_type = Object)]
    pub data: Box<RawValue>,
    /// The version the record must be at (1 or more): replaced only then, else 412 with
    /// its current version; never created. The body's form of `If-Match` (send one of
    /// the two); a record that must not exist yet is a transaction's `if_version: 0`.
    #[schema(value_type = Option<i64>, minimum = 1)]
    pub if_version: Option<Value>,
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// One of the configured tables.
    #[param(example = "users")]
    pub table: String,
    /// The record's id.
    #[param(example = "user_123")]
    pub id: String,
}

/// A batch of records for one table.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"table": "users", "records": [{"shard_key": "user_1", "data": {"id": "user_1", "name": "Ada"}}, {"shard_key": "user_2", "id": "user_2", "data": {"name": "Grace"}}]}))]
pub struct BulkRequest {
    pub table: String,
    /// At most `server.max_batch_records` (10000 by default). A record that is not
    /// valid does not fail the batch: it is listed in the answer's `failed`.
    /// Each record kept as the text sent until it is checked (its document is never
    /// built into a tree: every digit is kept, as a single write keeps it).
    #[schema(value_type = Vec<BulkRecord>)]
    pub records: Vec<Box<RawValue>>,
    /// All or nothing: the batch is one transaction (`POST /api/transaction`'s path and
    /// answer; at most `server.max_transaction_operations` records, each record once,
    /// any invalid record refuses the batch). Default false: atomic per shard only.
    #[serde(default)]
    pub atomic: bool,
}

/// One record of a batch, as it should be (the gateway takes any JSON here and reports
/// each record that is not this in `failed`).
#[derive(Debug, ToSchema)]
pub struct BulkRecord {
    /// The record's shard key; without it, the `x-shard-key` header's.
    pub shard_key: Option<String>,
    #[schema(schema_with = record_id_schema)]
    pub id: Option<Value>,
    /// The record: any JSON object.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// Per-shard count.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShardCount {
    pub shard: u32,
    pub written: usize,
    /// Why this shard's group failed, when it did.
    pub error: Option<String>,
    /// Read-your-writes token for this shard's part of the batch.
    pub lsn: Option<String>,
    /// Of `written`, the records an earlier request with the same `Idempotency-Key` had
    /// written (counted, not written again); `idempotency-replayed` is set when that is
    /// every record of the batch.
    pub written_before: usize,
}

/// What was written and what was not.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResponse {
    pub table: String,
    pub written: usize,
    pub failed_count: usize,
    pub shards: Vec<ShardCount>,
    pub failed: Vec<BulkFailure>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The cache stores `Record`'s JSON and the hit path sends it as a `RecordBody`:
    /// the two must stay the same document, field for field and in order.
    #[test]
    fn a_cached_record_is_byte_for_byte_the_record_body() {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 5, 0, 0).unwrap();
        let record = Record {
            table_name: "users".into(),
            shard_key: "k|1".into(),
            id: "r\"1".into(),
            slot: 9,
            data: RawJson::from_value(&serde_json::json!({"b": 1, "a": [true, null]})),
            version: 77,
            created_at: at,
            updated_at: at,
        };
        let cached = serde_json::to_string(&record).unwrap();
        let body = serde_json::to_string(&RecordBody::from(record)).unwrap();
        assert_eq!(cached, body);
    }
}

/// The cut a snapshot read was served at.
#[derive(Debug, Serialize, ToSchema)]
pub struct CutBody {
    /// Names this cut (in the gateway's logs too).
    #[schema(example = "5f0c4a9be1d34b8c9a7e2f6d1c3b5a79")]
    pub id: String,
    /// How long transaction decisions were held back to open it, in microseconds.
    pub fence_us: u64,
    /// Parts of committed transactions the gateway finished by the log while opening
    /// it (their coordinator had died or was slow), usually 0.
    pub finished: usize,
    /// Each shard read, with its snapshot and its primary's WAL position then.
    pub shards: Vec<ShardCutBody>,
}

/// One shard's snapshot.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShardCutBody {
    pub shard: u32,
    /// PostgreSQL's `pg_current_snapshot()` on the shard's primary (`xmin:xmax:xip`).
    #[schema(example = "7751:7751:")]
    pub snapshot: String,
    #[schema(example = "0/3A1B2C8")]
    pub lsn: String,
}

impl From<Cut> for CutBody {
    fn from(cut: Cut) -> Self {
        Self {
            id: cut.id,
            fence_us: cut.fence_us,
            finished: cut.finished,
            shards: cut
                .shards
                .into_iter()
                .map(|s| ShardCutBody {
                    shard: s.shard,
                    snapshot: s.snapshot,
                    lsn: s.lsn,
                })
                .collect(),
        }
    }
}
