//! A server that must not take writes, told so where the shard enforces it: its slot
//! ownership (`shardgate_slots`) emptied at the current map version, in one
//! transaction that first takes every owned slot's advisory lock, so writes in flight
//! there finish first and every later one (and every read) is refused with SG001
//! naming that version: a stale gateway reloads the map and reroutes to the primary
//! the map names. Used on an old primary that came back writable (split brain), by
//! its own address ([`disown`]); behind a service address, through the one connection
//! that reached it ([`disown_on`]): by address, a fence would reach whatever node the
//! address leads to next, the primary included.
//!
//! Never lowers what the server was told: a server told a newer version is left as it
//! is. The statements are the shard's (`shard_manager::store::statements`), sent by
//! the wire client (`shard_manager::wire::upkeep::disown`).

use crate::map::MapError;
use shard_manager::config::ClusterSettings;
use shard_manager::routing::{MapVersion, ShardId};
use shard_manager::wire::{connect, upkeep, Target, WireConn};

/// Empties `server`'s slot ownership as of `version`: how many slots it gave up, or
/// None when it had been told a newer version (left alone).
pub async fn disown(
    settings: &ClusterSettings,
    shard: ShardId,
    server: &str,
    version: MapVersion,
) -> Result<Option<u64>, MapError> {
    let fail = |reason: String| MapError::Shard {
        shard,
        server: server.to_owned(),
        reason,
    };
    let mut conn = connect(&Target::new(&settings.database, server))
        .await
        .map_err(|e| fail(e.to_string()))?;
    disown_on(&mut conn, shard, server, version).await
}

/// As [`disown`], on the server `conn` reached (through `address`, named in errors).
pub async fn disown_on(
    conn: &mut WireConn,
    shard: ShardId,
    address: &str,
    version: MapVersion,
) -> Result<Option<u64>, MapError> {
    upkeep::disown(conn, shard.0, version.0)
        .await
        .map_err(|e| MapError::Shard {
            shard,
            server: address.to_owned(),
            reason: e.to_string(),
        })
}
