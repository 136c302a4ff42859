//! Retired epochs, told to Redis itself: a per-shard key `{prefix}:{shard}:below` says
//! that every epoch of the shard below its number is abandoned. Every lookup reads it in
//! the same round trip as the entry (an entry of a retired epoch is bypassed) and every
//! install checks it in `install.lua` (nothing is installed into a retired epoch).
//!
//! Why: a gateway learns a raised epoch from its own checks of the shard, and a new map
//! from the metadata database; until it does, it would serve the entries of the epoch it
//! knows. When slots change hands, the new owner takes writes as soon as the next map is
//! stored, while a gateway that still routes with the old map would read the old owner's
//! entries. So the mover raises the old owner's epoch as it switches and, before it
//! stores the next map, tells the caches here: from then on no gateway serves an entry of
//! the old epoch, whatever it has heard. (The shards refuse reads of slots they do not
//! own, so nothing newer can be installed for the moved slots there either.)
//!
//! A writer that could not update Redis and raised its shard's epoch instead also tries,
//! once, to retire the old epoch here: when the failure was a passing timeout, the other
//! gateways then stop reading it at once instead of within their next check.
//!
//! The marker only grows and carries no expiry (one small key per shard and prefix).

use std::time::Duration;

use crate::routing::ShardId;

/// Raises the marker to `ARGV[1]` if it is lower; never lowers it.
const RETIRE: &str = "local cur = tonumber(redis.call('GET', KEYS[1]) or '0') \
    if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1]) end \
    return 1";

/// The key that holds the lowest live epoch of `shard` under `prefix`.
pub(super) fn retired_key(prefix: &str, shard: ShardId) -> String {
    format!("{prefix}:{}:below", shard.0)
}

/// Whether an epoch `n` is retired by the marker's value `below` (as read from Redis).
pub(super) fn is_retired(n: u64, below: Option<&str>) -> bool {
    below
        .and_then(|b| b.parse::<u64>().ok())
        .is_some_and(|b| n < b)
}

impl super::Cache {
    /// Retires `shard`'s epochs below `live` under this gateway's prefix (one call,
    /// under the breaker and the timeout; a failure is only counted).
    pub(super) async fn retire_below(&self, shard: ShardId, live: u64) {
        let key = retired_key(&self.prefix, shard);
        let mut usage = super::CacheUsage::default();
        let _: Option<i64> = self
            .call(&mut usage, move |mut conn| async move {
                redis::Script::new(RETIRE)
                    .key(key)
                    .arg(live)
                    .invoke_async(&mut conn)
                    .await
            })
            .await;
    }
}

/// Tells the Redis at `url`, under each of `prefixes`, that `shard`'s epochs below
/// `live` are retired; each call is bounded by `timeout`. The error names what failed
/// (never the URL's password).
pub async fn retire(
    url: &str,
    prefixes: &[String],
    shard: ShardId,
    live: u64,
    timeout: Duration,
) -> Result<(), String> {
    if prefixes.is_empty() {
        return Ok(());
    }
    let client = crate::config::cache_url(url).map_err(|e| e.to_string())?;
    let connect = client.get_multiplexed_async_connection();
    let mut conn = tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| format!("redis did not answer within {} ms", timeout.as_millis()))?
        .map_err(|e| format!("redis refused the connection: {e}"))?;
    let script = redis::Script::new(RETIRE);
    for prefix in prefixes {
        let key = retired_key(prefix, shard);
        let mut call = script.key(&key);
        call.arg(live);
        let told: Result<redis::RedisResult<i64>, _> =
            tokio::time::timeout(timeout, call.invoke_async(&mut conn)).await;
        match told {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("redis refused {key}: {e}")),
            Err(_) => {
                return Err(format!(
                    "redis did not answer for {key} within {} ms",
                    timeout.as_millis()
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_below_the_marker_is_retired_and_one_at_it_is_not() {
        assert!(is_retired(3, Some("4")));
        assert!(!is_retired(4, Some("4")));
        assert!(!is_retired(5, Some("4")));
    }

    #[test]
    fn no_marker_or_an_unreadable_one_retires_nothing() {
        assert!(!is_retired(0, None));
        assert!(!is_retired(7, Some("x")));
    }

    #[test]
    fn the_key_is_apart_from_every_entry_key() {
        // Entry keys are `{prefix}:{shard}.{epoch}:...`: a dot after the shard.
        assert_eq!(retired_key("sg", ShardId(2)), "sg:2:below");
    }
}
