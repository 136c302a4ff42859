//! Telling each shard which slots it owns (the tables and functions of the
//! `slot_ownership` migration), so that it refuses every other slot.
//!
//! A shard's change takes the slots' advisory locks exclusively, in slot order, so it
//! waits for writes in flight on those slots, and writes that come after see the new
//! ownership.

use super::MapError;
use crate::postgres::connect as connect_postgres;
use shard_manager::config::ClusterSettings;
use shard_manager::live_map::shard_map::ShardMap;
use shard_manager::routing::{MapVersion, ShardId};
use shard_manager::servers::connection_url;

/// What one shard was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Told {
    pub shard: ShardId,
    pub gained: usize,
    pub lost: usize,
}

/// Makes `shard`'s primary own exactly the slots `map` gives it, at `map.version`.
pub async fn tell(
    settings: &ClusterSettings,
    map: &ShardMap,
    shard: ShardId,
) -> Result<Told, MapError> {
    let (client, driver, fail) = connect(settings, map, shard).await?;
    let (gained, lost) = tell_on(&client, map, shard).await.map_err(&fail)?;
    drop(client);
    let _ = driver.await;
    Ok(Told {
        shard,
        gained,
        lost,
    })
}

/// [`tell`] on a connection already open to `shard`'s primary (no transaction open on
/// it): (slots gained, slots dropped).
pub async fn tell_on(
    client: &tokio_postgres::Client,
    map: &ShardMap,
    shard: ShardId,
) -> Result<(usize, usize), tokio_postgres::Error> {
    client.batch_execute("BEGIN").await?;
    let told = tell_in_transaction(client, map, shard).await;
    match told {
        Ok(counts) => {
            client.batch_execute("COMMIT").await?;
            Ok(counts)
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

async fn tell_in_transaction(
    client: &tokio_postgres::Client,
    map: &ShardMap,
    shard: ShardId,
) -> Result<(usize, usize), tokio_postgres::Error> {
    let slots = map.slots_of(shard);
    let version = map.version.0 as i64;
    // The slots that change hands on this shard, locked in order.
    let changing = "(SELECT unnest($1::int[]) EXCEPT SELECT slot FROM shardgate_slots)
                    UNION
                    (SELECT slot FROM shardgate_slots EXCEPT SELECT unnest($1::int[]))";
    client
        .execute(
            &format!("SELECT pg_advisory_xact_lock(21319, s) FROM ({changing} ORDER BY 1) AS c(s)"),
            &[&slots],
        )
        .await?;
    let lost = client
        .execute(
            "DELETE FROM shardgate_slots WHERE slot <> ALL($1::int[])",
            &[&slots],
        )
        .await?;
    let gained = client
        .execute(
            "INSERT INTO shardgate_slots (slot, since) SELECT unnest($1::int[]), $2
             ON CONFLICT (slot) DO NOTHING",
            &[&slots, &version],
        )
        .await?;
    client
        .execute(
            "INSERT INTO shardgate_map (shard, version) VALUES ($1, $2)
             ON CONFLICT (singleton) DO UPDATE
                SET shard = excluded.shard, version = excluded.version, updated_at = now()",
            &[&(shard.0 as i32), &version],
        )
        .await?;
    Ok((gained as usize, lost as usize))
}

/// What a shard says it owns: (map version it was told, slot count), None if never told.
pub async fn told(
    settings: &ClusterSettings,
    map: &ShardMap,
    shard: ShardId,
) -> Result<Option<(MapVersion, usize)>, MapError> {
    let (client, driver, fail) = connect(settings, map, shard).await?;
    let row = client
        .query_opt(
            "SELECT version, (SELECT count(*) FROM shardgate_slots) FROM shardgate_map",
            &[],
        )
        .await
        .map_err(&fail)?;
    drop(client);
    let _ = driver.await;
    Ok(row.map(|r| {
        (
            MapVersion(r.get::<_, i64>(0) as u64),
            r.get::<_, i64>(1) as usize,
        )
    }))
}

type Driver = tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>;

/// A connection to `shard`'s primary (its driver task), and how to name a failure there.
async fn connect<'m>(
    settings: &ClusterSettings,
    map: &'m ShardMap,
    shard: ShardId,
) -> Result<
    (
        tokio_postgres::Client,
        Driver,
        impl Fn(tokio_postgres::Error) -> MapError + 'm,
    ),
    MapError,
> {
    let primary = &map.shards[shard.index()].primary;
    let url = connection_url(&settings.database, primary);
    let fail = move |e: tokio_postgres::Error| MapError::Shard {
        shard,
        server: primary.clone(),
        reason: e.to_string(),
    };
    let (client, connection) =
        connect_postgres(&url, &settings.database)
            .await
            .map_err(|reason| MapError::Shard {
                shard,
                server: primary.clone(),
                reason,
            })?;
    Ok((client, tokio::spawn(connection), fail))
}
