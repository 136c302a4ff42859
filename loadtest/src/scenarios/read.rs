//! Reads of records the prefill wrote: `read` (a replica), `read-strong` (the primary),
//! `read-cached` (pending: the same request as `read` until the gateway caches), and
//! `list` (a key's newest orders).
//!
//! A 404 is a failure: every id read here exists once the key space is prefilled. A
//! list that comes back empty is a failure for the same reason.

use goose::prelude::{GooseUser, TransactionResult};

use crate::http::{send, Call};
use crate::keys::{shard_key, user_id};
use crate::workload::Workload;

/// `GET /api/read?table=users&id=rec_{n}`, served by a replica.
pub async fn read(user: &mut GooseUser, workload: &Workload) -> TransactionResult {
    point_read(user, workload, "read", "").await
}

/// The same read with `consistency=strong`, served by the primary.
pub async fn read_strong(user: &mut GooseUser, workload: &Workload) -> TransactionResult {
    point_read(user, workload, "read-strong", "&consistency=strong").await
}

/// Pending: the gateway has no cache yet, so this is exactly `read`. Once caching
/// exists the gateway caches eventual point reads, and this same request measures it
/// (hits show in the server-side summary's `cache` role).
pub async fn read_cached(user: &mut GooseUser, workload: &Workload) -> TransactionResult {
    point_read(user, workload, "read-cached", "").await
}

async fn point_read(
    user: &mut GooseUser,
    workload: &Workload,
    name: &str,
    query: &str,
) -> TransactionResult {
    let n = workload.keys.sample(&mut rand::rng());
    let path = format!("/api/read?table=users&id={}{query}", user_id(n));
    let key = shard_key(n);
    send(user, Call::get(name, &path).shard_key(&key)).await?;
    Ok(())
}

/// `GET /api/read?table=orders&limit=10`: the key's newest orders, from a replica.
pub async fn list(user: &mut GooseUser, workload: &Workload) -> TransactionResult {
    let key = shard_key(workload.keys.sample(&mut rand::rng()));
    let mut reply = send(
        user,
        Call::get("list", "/api/read?table=orders&limit=10").shard_key(&key),
    )
    .await?;
    if !reply.request.success {
        return Ok(());
    }
    let count = reply.json().and_then(|body| body["count"].as_u64());
    match count {
        Some(0) => user.set_failure(
            "list: the key has no orders (was the key space prefilled?)",
            &mut reply.request,
            None,
            None,
        ),
        Some(_) => Ok(()),
        None => user.set_failure(
            "list: 200 without a `count`",
            &mut reply.request,
            None,
            None,
        ),
    }
}
