//! What the tests hand the cluster, made the way the gateway makes it at the edge (keys
//! routed once, tables and documents parsed), and what they read back out of it.

use serde_json::Value;
use shard_manager::{
    Cluster, Document, Found, Lsn, Record, RecordId, RoutedKey, Served, ShardId, ShardKey,
    TableName,
};
use tokio_postgres::Client;

/// `name`, one of the configured tables.
pub fn table(cluster: &Cluster, name: &str) -> TableName {
    cluster.tables().parse(name).expect("a configured table")
}

/// `key`, routed with the cluster's map.
pub fn route(cluster: &Cluster, key: &str) -> RoutedKey {
    let key = ShardKey::parse(key).expect("a valid key");
    cluster.router().route(key).expect("routed")
}

/// The first key `{prefix}-{n}` that routes to `shard`.
pub fn key_on(cluster: &Cluster, shard: ShardId, prefix: &str) -> RoutedKey {
    (0..10_000)
        .map(|n| route(cluster, &format!("{prefix}-{n}")))
        .find(|key| key.shard() == shard)
        .unwrap_or_else(|| panic!("no key of {prefix} routes to {shard}"))
}

pub fn id(text: &str) -> RecordId {
    RecordId::parse(text).expect("a valid id")
}

pub fn doc(value: Value) -> Document {
    Document::parse(value).expect("a JSON object")
}

/// The record a read served from a server (never the cache: these tests run without).
pub fn stored(served: Served<Option<Found>>) -> Record {
    match served.value {
        Some(Found::Stored(record)) => record,
        Some(Found::Cached(_)) => panic!("served from the cache, which is off"),
        None => panic!("not found on {} {}", served.role, served.server),
    }
}

/// The server's WAL position now (`pg_current_wal_lsn`).
pub async fn wal_now(client: &Client) -> Lsn {
    let text: String = client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .expect("the WAL position")
        .get(0);
    Lsn::parse(&text).expect("an LSN")
}

/// (id, version, data) of every row of `key` in `table`, as the server stores them, by id.
pub async fn rows(client: &Client, table: &str, key: &str) -> Vec<(String, i64, Value)> {
    client
        .query(
            "SELECT id, version, data::text FROM records
              WHERE table_name = $1 AND shard_key = $2 ORDER BY id",
            &[&table, &key],
        )
        .await
        .expect("the stored rows")
        .iter()
        .map(|row| {
            let data: String = row.get(2);
            let data = serde_json::from_str(&data).expect("stored JSON");
            (row.get(0), row.get(1), data)
        })
        .collect()
}
