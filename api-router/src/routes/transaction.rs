//! `POST /api/transaction`: operations on any records of any shards, applied all
//! together or not at all (`shard_manager::cluster::txn`).

use actix_web::{web, HttpResponse};

use crate::access::Caller;
use crate::edge::observe::Outcome;
use crate::error::{ApiError, Problem};
use crate::input::json_body::BoundedJson;
use crate::input::transaction::{
    parse_operations, OperationResult, TransactionRequest, TransactionResponse, TransactionShard,
};
use crate::limits::Quota;
use crate::state::AppState;

#[utoipa::path(
    post,
    path = "/api/transaction",
    tag = "records",
    request_body = TransactionRequest,
    responses(
        (status = 200, description = "Every operation committed: each record's new version, and one read-your-writes token per shard touched", body = TransactionResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "(`condition-failed`) An `if_version` did not hold: nothing written on any shard; `operation` names it and `current_version` is the record's version (0: absent)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "(`too-many-operations`) More than `server.max_transaction_operations` operations (`operation` is the first extra), or too large a body", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not labelled JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "(`empty-transaction`) No operation; or (`invalid-operation`, `operation` names it) an unknown table, a bad shard key, id, `op`, `data` or `if_version`, or the same record twice. Nothing written", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the API key's rate or its queries at once on a shard", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Nothing written: a shard failed its part (`transaction-not-written`, the shard named), or the coordinator log is unreachable (`coordinator-log-unavailable`). Or the outcome is settled by recovery within `server.txn_in_doubt_ms`: `transaction-in-doubt` (all or nothing), `transaction-committing` (committed; the named shard applies it within the bound)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "A shard did not answer in time", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn transaction(
    state: web::Data<AppState>,
    caller: Caller,
    quota: Quota,
    body: BoundedJson<TransactionRequest>,
) -> Result<HttpResponse, ApiError> {
    let router = state.cluster.router();
    let ops = parse_operations(
        &body.0.operations,
        state.cluster.tables(),
        &router,
        &state.server,
    )?;
    drop(router);
    for op in &ops {
        caller.permit(&op.table)?;
    }
    let _permits = quota.enter(ops.iter().map(|o| o.key.shard())).await?;
    let outcome = state.bounded(state.cluster.transaction(&ops)).await?;
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
        protocol: match outcome.txid {
            None => "one-shard".into(),
            Some(_) => "two-phase".into(),
        },
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
    Outcome::bulk(ops.len() as u64).attach(&mut res);
    Ok(res)
}
