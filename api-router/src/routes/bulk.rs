//! `POST /api/bulk-write`: many records, grouped by shard, one transaction per shard;
//! with `"atomic": true`, one transaction for the whole batch (`transaction::commit`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashMap;

use shard_manager::cluster::bulk::BulkFailure;
use shard_manager::cluster::txn::TxnOp;
use shard_manager::store::{minted_id, TableName};
use shard_manager::{BulkItem, Document, RecordId, RoutedKey, Router, ShardKey};

use crate::access::Caller;
use crate::edge::observe::Outcome;
use crate::error::{ApiError, Problem};
use crate::input::body::{BulkRequest, BulkResponse, ShardCount};
use crate::input::conditional::NoConditions;
use crate::input::extract::OptionalRouted;
use crate::input::idempotency::{canonical, mark_replayed, IdempotencyKeyHeader};
use crate::input::json_body::BoundedJson;
use crate::limits::Quota;
use crate::server::settings::ServerSettings;
use crate::state::AppState;

#[utoipa::path(
    post,
    path = "/api/bulk-write",
    tag = "records",
    request_body = BulkRequest,
    params(("x-shard-key" = Option<String>, Header, min_length = 1, max_length = 256, example = "user_123", description = "Default shard key for records without one"),
        ("idempotency-key" = Option<String>, Header, min_length = 1, max_length = 255, example = "import-7-try", description = "1 to 255 visible ASCII characters: each record of the batch is written once; sending the same batch with the key again writes only the records not written before, wherever their slots live, and counts the others as written (each shard's `written_before`; `idempotency-replayed: true` when that is every record)")),
    responses(
        (status = 200, description = "Every record written. With `\"atomic\": true` the answer is `/api/transaction`'s (`TransactionResponse`), and its problems too (409, 413 `too-many-operations`, 422 `invalid-operation` naming the record, 503 `transaction-*`): all or nothing", body = BulkResponse),
        (status = 207, description = "Some records written; `failed` lists the others. Also when every record was written but a shard could not tell the caches (its `error` says so: reads through other gateways may return the previous versions for a while)", body = BulkResponse),
        (status = 400, description = "Malformed JSON or an invalid header (the problem's `header` names it); `if-match` or `if-none-match`, which a bulk write does not take", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too many records or too large a body", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not labelled JSON (`application/json` or a `+json` type)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown table, a body of the wrong shape, no records, or no record valid (`failed` says why); or (`idempotency-key-reused`) the key was sent before with a different batch: nothing written", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the API key's rate (`rate-limited`) or its queries at once on a shard the batch writes to (`concurrency-limited`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No record written because shards were unavailable (`failed` lists them). Or (`record-id-unavailable`) a record without an id under an `Idempotency-Key`, before the gateway has read the cluster's secret for such ids from the metadata database: nothing written; send the id, or send the request again", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The batch did not finish in time", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn bulk_write(
    state: web::Data<AppState>,
    caller: Caller,
    quota: Quota,
    header_key: OptionalRouted,
    key_header: IdempotencyKeyHeader,
    _: NoConditions,
    body: BoundedJson<BulkRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let table = state.cluster.tables().parse(&body.table)?;
    caller.permit(&table)?;
    let idempotency = key_header.for_request(&caller, state.server.idempotency_ttl_secs, || {
        let header = header_key.0.as_ref().map(|k| k.as_str().to_owned());
        vec![
            match body.atomic {
                true => "bulk-atomic".into(),
                false => "bulk".into(),
            },
            table.as_str().into(),
            header.unwrap_or_default(),
            // Each record in one spelling, as a single write's document is.
            format!(
                "[{}]",
                body.records
                    .iter()
                    .map(|r| canonical(r))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ]
    });
    let limit = state.server.max_batch_records;
    if body.records.len() > limit {
        return Err(ApiError::BatchTooLarge { limit });
    }
    if body.records.is_empty() {
        return Err(ApiError::Unprocessable(
            "`records` is empty; send at least one record".into(),
        ));
    }
    let mut items = Vec::with_capacity(body.records.len());
    let mut invalid = Vec::new();
    let router = state.cluster.router();
    // One size limit for a record on every path: a single write's body limit.
    let max_record = state.server.max_body_bytes;
    for (index, raw) in body.records.into_iter().enumerate() {
        match parse_item(&raw, header_key.0.as_ref(), &router, max_record) {
            Ok((key, named, data)) => {
                // A record that needs an id the gateway cannot derive yet refuses the
                // whole request before anything is written: a part written under the
                // key would be replayed to every retry, without that record.
                let id = match named {
                    Some(id) => id,
                    None => minted_id(idempotency.as_ref(), state.id_secret.get(), index)?,
                };
                items.push(BulkItem {
                    index,
                    key,
                    id,
                    data,
                })
            }
            Err(reason) => invalid.push(BulkFailure { index, reason }),
        }
    }
    drop(router);
    if body.atomic {
        let ops = atomic_ops(&table, items, invalid, &state.server)?;
        return super::transaction::commit(&state, &caller, &quota, &ops, idempotency.as_ref())
            .await;
    }
    // One of the key's permits on each shard the batch writes to.
    let _permits = quota.enter(items.iter().map(|i| i.key.shard())).await?;
    let outcome = state
        .bounded(
            state
                .cluster
                .bulk_write(&table, items, idempotency.as_ref()),
        )
        .await?;
    let replayed = !outcome.shards.is_empty() && outcome.shards.iter().all(|s| s.replayed);
    state.record_cache(&outcome.cache);
    let written = outcome.written();
    let shard_failed = outcome.shards.iter().any(|s| s.error.is_some());
    let mut failed = outcome.failed;
    failed.extend(invalid);
    failed.sort_by_key(|f| f.index);
    if written == 0 {
        let status = if shard_failed {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        return Err(ApiError::BatchRejected { status, failed });
    }
    // A shard may have written its records and still failed to tell the caches.
    let status = if failed.is_empty() && !shard_failed {
        StatusCode::OK
    } else {
        StatusCode::MULTI_STATUS
    };
    let mut res = HttpResponse::build(status).json(BulkResponse {
        table: table.as_str().to_owned(),
        written,
        failed_count: failed.len(),
        shards: outcome
            .shards
            .iter()
            .map(|s| ShardCount {
                shard: s.shard.0,
                written: s.written,
                error: s.error.as_ref().map(ToString::to_string),
                lsn: s.token.map(|t| t.to_string()),
                written_before: s.written_before,
            })
            .collect(),
        failed,
    });
    mark_replayed(&mut res, replayed);
    Outcome::bulk(written as u64).attach(&mut res);
    Ok(res)
}

/// One record of a batch as sent: its document stays the text the client sent, as a
/// single write's does (every digit kept, checked by [`Document::parse_raw`]).
#[derive(Deserialize)]
struct SentRecord {
    #[serde(default)]
    shard_key: Option<Value>,
    #[serde(default)]
    id: Option<Value>,
    /// Present (even as `null`) or absent.
    #[serde(default, deserialize_with = "present")]
    data: Option<Box<RawValue>>,
}

fn present<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(de).map(Some)
}

/// One record of the batch (its key, id and document), or the reason it cannot be
/// written: a record larger than `max_bytes` (its text as sent) is refused whole, as a
/// single write of it would be. A record without an id gets `minted()`: under an
/// idempotency key the same id on every retry.
fn parse_item(
    raw: &RawValue,
    default_key: Option<&RoutedKey>,
    router: &Router,
    max_bytes: usize,
) -> Result<(RoutedKey, Option<RecordId>, Document), String> {
    let bytes = raw.get().len();
    if bytes > max_bytes {
        return Err(format!(
            "the record is {bytes} bytes; a record may be at most {max_bytes} bytes, as a \
             single write (server.max_body_bytes)"
        ));
    }
    if !raw.get().starts_with('{') {
        return Err("each record must be an object with `data`".into());
    }
    let sent: SentRecord = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
    let key = match sent.shard_key {
        Some(Value::String(s)) => route(router, &s)?,
        Some(Value::Number(n)) => route(router, &n.to_string())?,
        Some(_) => return Err("`shard_key` must be a string".into()),
        None => default_key
            .cloned()
            .ok_or("no `shard_key` in the record and no x-shard-key header")?,
    };
    let data = sent.data.ok_or("the record has no `data`")?;
    let data = Document::parse_raw(data).map_err(|e| e.to_string())?;
    let id = data.named_id(sent.id.as_ref()).map_err(|e| e.to_string())?;
    Ok((key, id, data))
}

/// The batch as a transaction's operations (`"atomic": true`): every record valid, each
/// record once, no more than a transaction takes; else nothing is written and the
/// problem names the first record at fault.
fn atomic_ops(
    table: &TableName,
    items: Vec<BulkItem>,
    invalid: Vec<BulkFailure>,
    server: &ServerSettings,
) -> Result<Vec<TxnOp>, ApiError> {
    if let Some(first) = invalid.into_iter().min_by_key(|f| f.index) {
        return Err(ApiError::Operation {
            index: first.index,
            reason: format!(
                "{}; an atomic batch is written whole or not at all",
                first.reason
            ),
        });
    }
    let limit = server.max_transaction_operations;
    if items.len() > limit {
        return Err(ApiError::TooManyOperations { limit });
    }
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    let mut ops = Vec::with_capacity(items.len());
    for item in items {
        let ident = (item.key.as_str().to_owned(), item.id.as_str().to_owned());
        if let Some(first) = seen.insert(ident, item.index) {
            return Err(ApiError::Operation {
                index: item.index,
                reason: format!("the same record as record {first} (shard_key and id): an atomic batch names each record once"),
            });
        }
        ops.push(TxnOp {
            index: item.index,
            table: table.clone(),
            key: item.key,
            id: item.id,
            data: Some(item.data),
            if_version: None,
        });
    }
    Ok(ops)
}

/// A record's own key, parsed and routed like a header's.
fn route(router: &Router, text: &str) -> Result<RoutedKey, String> {
    let key = ShardKey::parse(text).map_err(|e| e.to_string())?;
    router.route(key).map_err(|e| e.to_string())
}
