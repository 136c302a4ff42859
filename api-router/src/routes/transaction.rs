//! `POST /api/transaction`: operations on any records of any shards, applied all
//! together or not at all (`shard_manager::cluster::txn`). With an `Idempotency-Key`,
//! a transaction sent again is applied once and answered as it was the first time.
//! [`commit`] is the path `/api/bulk-write` with `"atomic": true` takes too.

use actix_web::{web, HttpResponse};

use crate::access::Caller;
use crate::edge::observe::Outcome;
use crate::error::{ApiError, Problem};
use crate::input::conditional::NoConditions;
use crate::input::idempotency::{canonical, mark_replayed, IdempotencyKeyHeader};
use crate::input::json_body::BoundedJson;
use crate::input::transaction::{
    parse_operations, OperationResult, TransactionRequest, TransactionResponse, TransactionShard,
};
use crate::limits::Quota;
use crate::state::AppState;
use shard_manager::cluster::txn::tally::Protocol;
use shard_manager::cluster::txn::TxnOp;
use shard_manager::store::IdempotencyKey;

#[utoipa::path(
    post,
    path = "/api/transaction",
    tag = "records",
    request_body = TransactionRequest,
    params(("idempotency-key" = Option<String>, Header, min_length = 1, max_length = 255, example = "transfer-7", description = "1 to 255 visible ASCII characters: the transaction is applied once; sent again with the same key and body it is answered as the first time (`idempotency-replayed: true`), with the same key and another body refused (422 `idempotency-key-reused`)")),
    responses(
        (status = 200, description = "Every operation committed: each record's new version, and one read-your-writes token per shard touched (`idempotency-replayed: true`: committed by an earlier request with the same key)", body = TransactionResponse),
        (status = 400, description = "Malformed JSON; `if-match` or `if-none-match` (the problem's `header` names it): conditions are `if_version` per operation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "(`condition-failed`) An `if_version` did not hold: nothing written on any shard; `operation` names it and `current_version` is the record's version (0: absent). (`concurrent-conflict`) Rolled back for a concurrent transaction (a deadlock across shards past `database.txn_lock_timeout_ms`: `sqlstate` 55P03; or 40P01, 40001): nothing written; retry", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "(`too-many-operations`) More than `server.max_transaction_operations` operations (`operation` is the first extra), or too large a body", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not labelled JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "(`empty-transaction`) No operation; or (`invalid-operation`, `operation` names it) an unknown table, a bad shard key, id, `op`, `data` or `if_version`, or the same record twice; or (`idempotency-key-reused`) the key was sent before with another transaction; or (`idempotency-entries-incomplete`) the key's transaction was applied before but its record is gone from a shard (expired). Nothing written", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the API key's rate or its queries at once on a shard", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Nothing written: a shard failed its part (`transaction-not-written`, the shard named), or the coordinator log is unreachable (`coordinator-log-unavailable`). Or the outcome is settled by recovery within `server.txn_in_doubt_ms`: `transaction-in-doubt` (all or nothing), `transaction-committing` (committed; the named shard applies it within the bound). Or (`record-id-unavailable`) a record without an id under an `Idempotency-Key`, before the gateway has read the cluster's secret for such ids from the metadata database: nothing written; send the id, or send the request again", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "A shard did not answer in time", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn transaction(
    state: web::Data<AppState>,
    caller: Caller,
    quota: Quota,
    key_header: IdempotencyKeyHeader,
    _: NoConditions,
    body: BoundedJson<TransactionRequest>,
) -> Result<HttpResponse, ApiError> {
    let idempotency = key_header.for_request(&caller, state.server.idempotency_ttl_secs, || {
        let mut parts = vec!["transaction".to_owned()];
        parts.extend(body.0.operations.iter().map(|op| canonical(op)));
        parts
    });
    let router = state.cluster.router();
    let ops = parse_operations(
        &body.0.operations,
        state.cluster.tables(),
        &router,
        &state.server,
        idempotency.as_ref(),
        state.id_secret.get(),
    )?;
    drop(router);
    commit(&state, &caller, &quota, &ops, idempotency.as_ref()).await
}

/// Runs the parsed operations all or nothing and answers with what they did.
pub(crate) async fn commit(
    state: &AppState,
    caller: &Caller,
    quota: &Quota,
    ops: &[TxnOp],
    idempotency: Option<&IdempotencyKey>,
) -> Result<HttpResponse, ApiError> {
    for op in ops {
        caller.permit(&op.table)?;
    }
    let _permits = quota.enter(ops.iter().map(|o| o.key.shard())).await?;
    // The coordinator runs in a task of its own: past the request's deadline the client
    // is told where the transaction stands, and the coordinator finishes or rolls back.
    let outcome = state
        .cluster
        .transaction_within(
            ops.to_vec(),
            idempotency.cloned(),
            state.server.request_timeout(),
        )
        .await?;
    state.record_cache(&outcome.cache);
    let results: Vec<OperationResult> = outcome
        .results
        .iter()
        .map(|r| {
            let op = &ops[r.index];
            OperationResult {
                index: r.index,
                table: op.table.as_str().to_owned(),
                shard_key: op.key.as_str().to_owned(),
                id: op.id.as_str().to_owned(),
                shard: r.shard.0,
                version: r.version,
                created: r.created,
                deleted: op.data.is_none() && r.version.is_some(),
            }
        })
        .collect();
    let mut res = HttpResponse::Ok().json(TransactionResponse {
        committed: true,
        protocol: Protocol::for_shards(outcome.tokens.len()).as_str().into(),
        txid: outcome.txid.clone(),
        results,
        shards: outcome
            .tokens
            .iter()
            .map(|t| TransactionShard {
                shard: t.shard.0,
                lsn: t.to_string(),
            })
            .collect(),
    });
    mark_replayed(&mut res, outcome.replayed);
    Outcome::bulk(ops.len() as u64).attach(&mut res);
    Ok(res)
}
