//! A planned switchover, told apart from a failover: the `switchover` command holds a
//! session advisory lock in the metadata database, `(21320, shard)`, for as long as it
//! runs, its session named after whoever asked. Whoever records the promotion (the
//! command, or a gateway's watcher that saw it first) finds the lock held and records
//! a `switchover`, naming that person. The lock also keeps two switchovers of one shard
//! apart, and goes with the command's session if it dies.

use tokio_postgres::Client;

use crate::map::MapError;
use shard_manager::routing::ShardId;

/// The advisory lock's first key (the second is the shard).
const LOCK_CLASS: i32 = 21320;
/// How the holding session is named: this, then who asked.
const NAME_PREFIX: &str = "shardgate switchover by ";

/// Takes the lock for `shard` on this session, named after `actor`: false when another
/// session holds it.
pub async fn hold(client: &Client, shard: ShardId, actor: &str) -> Result<bool, MapError> {
    let name = format!("{NAME_PREFIX}{actor}");
    client
        .execute("SELECT set_config('application_name', $1, false)", &[&name])
        .await?;
    let row = client
        .query_one(
            "SELECT pg_try_advisory_lock($1, $2)",
            &[&LOCK_CLASS, &(shard.0 as i32)],
        )
        .await?;
    Ok(row.get(0))
}

/// Who asked for a switchover of `shard` that is under way now, if one is.
pub async fn asked_by(client: &Client, shard: ShardId) -> Result<Option<String>, MapError> {
    let row = client
        .query_opt(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
              WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::int::oid
                AND l.objid = $2::int::oid AND l.objsubid = 2
              LIMIT 1",
            &[&LOCK_CLASS, &(shard.0 as i32)],
        )
        .await?;
    Ok(row.map(|r| {
        let name: String = r.get(0);
        name.strip_prefix(NAME_PREFIX).unwrap_or(&name).to_owned()
    }))
}
