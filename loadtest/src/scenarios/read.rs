//! Reads of records the prefill wrote: `read` (a replica), `read-strong` (the primary),
//! `read-cached` (the same request as `read`, counting the gateway's `x-cache` answers),
//! and `list` (a key's newest orders).
//!
//! A 404 is a failure: every id read here exists once the key space is prefilled. A
//! list that comes back empty is a failure for the same reason.

use goose::prelude::{GooseUser, TransactionError, TransactionResult};

use crate::http::{send, Call, Reply};
use crate::keys::{shard_key, user_id};
use crate::workload::Workload;

/// `GET /api/read?table=users&id=rec_{n}`, served by a replica.
pub async fn read(user: &mut GooseUser, workload: &Workload) -> TransactionResult {
    point_read(user, workload, "read", "").await?;
    Ok(())
}

/// The same read with `consistency=strong`, served by the primary.
pub async fn read_strong(user: &mut GooseUser, workload: &Workload) -> TransactionResult {
    point_read(user, workload, "read-strong", "&consistency=strong").await?;
    Ok(())
}

/// Exactly `read`'s request: the gateway caches eventual point reads when its
/// `[cache] enabled` is true. The `x-cache` header of each answer (`hit`, `miss`,
/// `bypass`, or none when the cache is off) is counted for the summary; the server-side
/// summary's `cache` role shows the same from the gateway's side.
pub async fn read_cached(user: &mut GooseUser, workload: &Workload) -> TransactionResult {
    let reply = point_read(user, workload, "read-cached", "").await?;
    if reply.request.success {
        workload.cache.record(reply.cache.as_deref());
    }
    Ok(())
}

async fn point_read(
    user: &mut GooseUser,
    workload: &Workload,
    name: &str,
    query: &str,
) -> Result<Reply, Box<TransactionError>> {
    let n = workload.keys.sample(&mut rand::rng());
    let path = format!("/api/read?table=users&id={}{query}", user_id(n));
    let key = shard_key(n);
    let call = Call::get(name, &path).shard_key(&key);
    send(user, call.traced(&workload.traces)).await
}

/// `GET /api/read?table=orders&limit=10`: the key's newest orders, from a replica.
pub async fn list(user: &mut GooseUser, workload: &Workload) -> TransactionResult {
    let key = shard_key(workload.keys.sample(&mut rand::rng()));
    let mut reply = send(
        user,
        Call::get("list", "/api/read?table=orders&limit=10")
            .shard_key(&key)
            .traced(&workload.traces),
    )
    .await?;
    if !reply.request.success {
        return Ok(());
    }
    let count = reply.json().and_then(|body| body["count"].as_u64());
    match count {
        Some(0) => user.set_failure(
            "the key has no orders (was the key space prefilled?)",
            &mut reply.request,
            None,
            None,
        ),
        Some(_) => Ok(()),
        None => user.set_failure("200 without a `count`", &mut reply.request, None, None),
    }
}
