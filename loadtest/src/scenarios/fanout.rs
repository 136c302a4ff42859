//! `fan-out`: `GET /api/read?table=users&limit=10` without `x-shard-key`: the newest
//! users across every shard, gathered and merged by the gateway.
//!
//! A 206 (some shard did not answer, `partial: true`) is a 2xx that goose would count
//! as a success; it is marked failed here, named by the shards that failed. A gateway
//! that predates fan-out reads answers 400 (missing shard key); the summary says so.

use goose::prelude::{GooseUser, TransactionResult};

use crate::http::{send, Call};
use crate::workload::Workload;

/// One keyless list read.
pub async fn fan_out(user: &mut GooseUser, workload: &Workload) -> TransactionResult {
    let call = Call::get("fan-out", "/api/read?table=users&limit=10");
    let mut reply = send(user, call.traced(&workload.traces)).await?;
    if reply.status != 206 {
        return Ok(());
    }
    let failed: Vec<String> = reply
        .json()
        .and_then(|body| body["failed_shards"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|f| f["shard"].to_string())
        .collect();
    let tag = format!("206 partial: shard {} did not answer", failed.join(", "));
    user.set_failure(&tag, &mut reply.request, None, None)
}
