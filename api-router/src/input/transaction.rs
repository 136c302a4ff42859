//! `POST /api/transaction`'s body and answer, and the operations parsed and checked at
//! the edge, each problem naming the operation by its index: an empty list, too many,
//! the same record twice, an unknown table, a bad `if_version`, a bad key or id.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use shard_manager::cluster::txn::TxnOp;
use shard_manager::store::{minted_id, IdSecret, IdempotencyKey, Tables};
use shard_manager::{Document, Router, ShardKey};
use utoipa::ToSchema;

use super::json_body::Bounded;
use super::json_limits::JsonLimits;
use crate::error::ApiError;
use crate::server::settings::ServerSettings;

/// Operations applied all together or not at all.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"operations": [
    {"op": "upsert", "table": "users", "shard_key": "alice", "id": "alice", "data": {"balance": 90}},
    {"op": "upsert", "table": "users", "shard_key": "bob", "id": "bob", "data": {"balance": 10}}
]}))]
pub struct TransactionRequest {
    /// 1 to `server.max_transaction_operations` (100 by default) operations, each on a
    /// different record.
    #[schema(value_type = Vec<TransactionOperation>)]
    pub operations: Vec<Box<RawValue>>,
}

/// One operation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransactionOperation {
    /// `upsert` (default) or `delete`.
    #[serde(default)]
    #[schema(example = "upsert")]
    pub op: Option<String>,
    #[schema(example = "accounts")]
    pub table: String,
    /// The record's shard key (1 to 256 bytes of UTF-8).
    #[schema(value_type = String, example = "alice")]
    pub shard_key: Value,
    /// The record's id; an upsert without one takes `data.id`, then a new UUID. A delete
    /// needs it.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "alice")]
    pub id: Option<Value>,
    /// The document an upsert writes (a JSON object).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Box<RawValue>>,
    /// The version the record must be at for the transaction to commit; 0: it must not
    /// exist.
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 0, example = 12)]
    pub if_version: Option<Value>,
}

fn present<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(de).map(Some)
}

impl Bounded for TransactionRequest {
    fn max_bytes(server: &ServerSettings) -> usize {
        server.max_bulk_body_bytes
    }

    fn limits(server: &ServerSettings) -> JsonLimits {
        JsonLimits {
            max_depth: server.max_json_depth,
            max_values: server.max_bulk_json_values,
            // Counted after parsing (the body and value limits bound it first), so the
            // problem names the first operation too many.
            counted_array: None,
        }
    }
}

/// What one operation did.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperationResult {
    pub index: usize,
    pub table: String,
    pub shard_key: String,
    pub id: String,
    pub shard: u32,
    /// The record's new version (a delete's: the version its deletion took); null for
    /// a delete of a record that did not exist.
    pub version: Option<i64>,
    /// An upsert that created the record.
    pub created: bool,
    /// A delete of a record that existed.
    pub deleted: bool,
}

/// A shard the transaction wrote, and its read-your-writes token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionShard {
    pub shard: u32,
    /// Send it back in `x-min-lsn` to read this shard's records at least this new.
    pub lsn: String,
}

/// Every operation committed.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionResponse {
    /// Always true: a transaction that did not commit answers a problem.
    pub committed: bool,
    /// `one-shard` (one round, no 2PC) or `two-phase`.
    pub protocol: String,
    /// The coordinator's id, for a transaction on several shards.
    pub txid: Option<String>,
    pub results: Vec<OperationResult>,
    pub shards: Vec<TransactionShard>,
}

/// The operations, parsed and routed, or the first problem, naming its operation.
/// An upsert without an id under `idempotency` gets the id the key gives it, keyed with
/// the cluster's `secret` (refused, 503, while the gateway has not read it).
pub fn parse_operations(
    raw: &[Box<RawValue>],
    tables: &Tables,
    router: &Router,
    server: &ServerSettings,
    idempotency: Option<&IdempotencyKey>,
    secret: Option<&IdSecret>,
) -> Result<Vec<TxnOp>, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::EmptyTransaction);
    }
    let limit = server.max_transaction_operations;
    if raw.len() > limit {
        return Err(ApiError::TooManyOperations { limit });
    }
    let mut seen: HashMap<(String, String, String), usize> = HashMap::new();
    let mut ops = Vec::with_capacity(raw.len());
    for (index, text) in raw.iter().enumerate() {
        let bad = |reason: String| ApiError::Operation { index, reason };
        // One size limit for a record on every path: a single write's body limit.
        let bytes = text.get().len();
        if bytes > server.max_body_bytes {
            return Err(bad(format!(
                "the operation is {bytes} bytes; an operation may be at most {} bytes, as a \
                 single write (server.max_body_bytes)",
                server.max_body_bytes
            )));
        }
        let sent: TransactionOperation =
            serde_json::from_str(text.get()).map_err(|e| bad(e.to_string()))?;
        let table = tables.parse(&sent.table).map_err(|e| bad(e.to_string()))?;
        let key = match &sent.shard_key {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(bad("`shard_key` must be a string".into())),
        };
        let key = ShardKey::parse(&key).map_err(|e| bad(e.to_string()))?;
        let key = router.route(key).map_err(|e| bad(e.to_string()))?;
        let if_version = match &sent.if_version {
            None => None,
            Some(v) => Some(
                v.as_i64()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| bad(format!("`if_version` must be a whole number, 0 or more (0: the record must not exist), got {v}")))?,
            ),
        };
        let (id, data) = match sent.op.as_deref().unwrap_or("upsert") {
            "upsert" => {
                let data = sent
                    .data
                    .ok_or_else(|| bad("an upsert needs `data`".into()))?;
                let data = Document::parse_raw(data).map_err(|e| bad(e.to_string()))?;
                let named = data
                    .named_id(sent.id.as_ref())
                    .map_err(|e| bad(e.to_string()))?;
                let id = match named {
                    Some(id) => id,
                    None => minted_id(idempotency, secret, index)?,
                };
                (id, Some(data))
            }
            "delete" => {
                if sent.data.is_some() {
                    return Err(bad("a delete takes no `data`".into()));
                }
                let id = sent
                    .id
                    .as_ref()
                    .ok_or_else(|| bad("a delete needs `id`".into()))?;
                let id = shard_manager::RecordId::from_json(id).map_err(|e| bad(e.to_string()))?;
                (id, None)
            }
            other => {
                return Err(bad(format!(
                    "`op` must be \"upsert\" or \"delete\", got {other:?}"
                )))
            }
        };
        let ident = (
            table.as_str().to_owned(),
            key.as_str().to_owned(),
            id.as_str().to_owned(),
        );
        if let Some(first) = seen.insert(ident, index) {
            return Err(bad(format!(
                "the same record as operation {first} (table, shard_key and id): a transaction names each record once"
            )));
        }
        ops.push(TxnOp {
            index,
            table,
            key,
            id,
            data,
            if_version,
        });
    }
    Ok(ops)
}
