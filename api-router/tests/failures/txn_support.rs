//! What the two-phase commit tests read straight from the servers: a shard's prepared
//! parts, an account's balance, the coordinator log's decisions; and the guard that
//! rolls back whatever a failed assertion left prepared.

use api_router::server::settings::Settings;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use shard_manager::servers::connection_url;

/// The URL of each shard primary's test database, in shard order, and the metadata
/// database's.
pub fn urls(settings: &Settings) -> (Vec<String>, String) {
    let db = &settings.cluster.database;
    let primaries = settings
        .cluster
        .shards
        .iter()
        .map(|s| connection_url(db, &s.primary))
        .collect();
    (
        primaries,
        connection_url(db, &settings.cluster.metadata.address),
    )
}

#[derive(QueryableByName, Debug)]
struct Gid {
    #[diesel(sql_type = Text)]
    gid: String,
}

#[derive(QueryableByName, Debug)]
struct Balance {
    #[diesel(sql_type = Nullable<BigInt>)]
    balance: Option<i64>,
}

#[derive(QueryableByName, Debug)]
struct Logged {
    #[diesel(sql_type = Text)]
    txid: String,
    #[diesel(sql_type = Text)]
    decision: String,
}

/// Our prepared parts (gids `sg_...`) in `url`'s database.
pub fn prepared(url: &str) -> Vec<String> {
    let mut conn = PgConnection::establish(url).expect("connect to a primary");
    diesel::sql_query(
        "SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND gid LIKE 'sg\\_%'",
    )
    .load::<Gid>(&mut conn)
    .expect("list prepared transactions")
    .into_iter()
    .map(|g| g.gid)
    .collect()
}

/// The balance of `users/<key>` on `url`, None when the record does not exist.
pub fn balance(url: &str, key: &str) -> Option<i64> {
    let mut conn = PgConnection::establish(url).expect("connect to a primary");
    diesel::sql_query(
        "SELECT (data->>'balance')::bigint AS balance FROM records \
         WHERE table_name = 'users' AND shard_key = $1 AND id = $1",
    )
    .bind::<Text, _>(key)
    .load::<Balance>(&mut conn)
    .expect("read a balance")
    .pop()
    .and_then(|b| b.balance)
}

/// The coordinator log's decisions: (txid, decision).
pub fn logged(meta_url: &str) -> Vec<(String, String)> {
    let mut conn = PgConnection::establish(meta_url).expect("connect to the metadata database");
    diesel::sql_query("SELECT txid, decision FROM txn_log")
        .load::<Logged>(&mut conn)
        .unwrap_or_default()
        .into_iter()
        .map(|l| (l.txid, l.decision))
        .collect()
}

/// Rolls back whatever an assertion left prepared in the test's database (else the
/// database cannot be dropped and its locks stay). Declare it after the `DropDatabase`
/// guard, so it runs first.
pub struct RollBackLeftovers(pub Vec<String>);

impl Drop for RollBackLeftovers {
    fn drop(&mut self) {
        for url in &self.0 {
            let Ok(mut conn) = PgConnection::establish(url) else {
                continue;
            };
            for gid in prepared(url) {
                let _ = diesel::sql_query(format!("ROLLBACK PREPARED '{gid}'")).execute(&mut conn);
            }
        }
    }
}

#[derive(QueryableByName, Debug)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// How many sessions of `url`'s database wait for `slot`'s write lock (the advisory
/// lock a slot's writes take shared and a move takes exclusively).
pub fn waiting_for_slot(url: &str, slot: i32) -> i64 {
    let mut conn = PgConnection::establish(url).expect("connect to a primary");
    diesel::sql_query(format!(
        "SELECT count(*) AS n FROM pg_locks \
          WHERE locktype = 'advisory' AND NOT granted AND classid = 21319 AND objid = {slot} \
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ))
    .get_result::<Count>(&mut conn)
    .expect("read pg_locks")
    .n
}
