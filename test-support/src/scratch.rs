//! Scratch databases on the real topology, made one way: [`create_databases`] names
//! one database on every primary and on the metadata server, [`drop_databases`] drops
//! it (the gateways of `test-app` run on such databases too). On top, for the
//! tests that start no gateway:
//!
//! - [`Scratch`]: a whole scratch cluster, a uniquely named database (`sgtest_scratch_*`)
//!   on every primary (the shards' migrations applied and recorded by
//!   `control_plane::migrations`, as `shard-admin migrate` does) and on the metadata
//!   server, the map seeded and told to the shards at version [`TOLD_AT`] as
//!   `shard-admin init` does, every replica caught up. Its shards can be told other
//!   slots in plain SQL ([`Scratch::tell`]). The shared map never changes; the
//!   databases are dropped when the [`Scratch`] is.
//! - [`MetaScratch`]: a scratch metadata database, dropped however a test ends.
//! - [`migrate`]: the shards' migrations on a scratch database, by the one runner: a
//!   scratch cluster's primaries, or a server the test made itself.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use control_plane::import::shards::Writer;
use control_plane::import::source::SourceRow;
use control_plane::migrations;
use control_plane::moves::{Move, Moves};
use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};
use shard_manager::config::{self, ClusterSettings, DatabaseSettings};
use shard_manager::live_map::ShardMap;
use shard_manager::servers::connection_url;
use shard_manager::{Cluster, Router, ShardId, ShardKey};
use tokio_postgres::Client;

use crate::maintenance::{connect_to, maintenance_as_superuser, on_own_runtime};

/// Creates database `name` on every primary and on the metadata server, as the
/// gateway's role. `name` must be a plain identifier (DDL takes no parameters).
/// Blocking: run it off the async runtime.
pub fn create_databases(cluster: &ClusterSettings, name: &str) {
    assert!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database names are identifiers"
    );
    let servers = cluster
        .shards
        .iter()
        .map(|s| &s.primary)
        .chain([&cluster.metadata.address]);
    for server in servers {
        let mut conn = maintenance_connection(cluster, server)
            .unwrap_or_else(|e| panic!("connect to {server}: {e}"));
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .unwrap_or_else(|e| panic!("create {name} on {server}: {e}"));
    }
}

/// Drops database `name` on every primary and on the metadata server, where
/// [`create_databases`] made it (FORCE ends the sessions still in it); a failure is
/// printed, never a panic, for this runs in drop guards. Blocking.
pub fn drop_databases(cluster: &ClusterSettings, name: &str) {
    let servers = cluster
        .shards
        .iter()
        .map(|s| &s.primary)
        .chain([&cluster.metadata.address]);
    for server in servers {
        let dropped = maintenance_connection(cluster, server).and_then(|mut conn| {
            diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .map_err(|e| e.to_string())
        });
        if let Err(e) = dropped {
            eprintln!("drop {name} on {server}: {e}");
        }
    }
}

/// A connection to `server`'s maintenance database as the gateway's role, without the
/// request path's statement timeout (CREATE and DROP DATABASE may take longer).
fn maintenance_connection(cluster: &ClusterSettings, server: &str) -> Result<PgConnection, String> {
    let mut db = cluster.database.clone();
    db.dbname = "postgres".into();
    let mut conn =
        PgConnection::establish(&connection_url(&db, server)).map_err(|e| e.to_string())?;
    diesel::sql_query("SET statement_timeout = 0")
        .execute(&mut conn)
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// The map version a scratch cluster's shards are told first (`shard-admin init` seeds
/// version 1).
pub const TOLD_AT: i64 = 1;

/// The scratch databases and the settings that name them.
pub struct Scratch {
    pub settings: ClusterSettings,
}

/// The settings `./setup.sh up` serves, from the built-in defaults and the environment
/// of `eval "$(./setup.sh env)"`, naming a fresh database (`sgtest_scratch_*`, which
/// `./setup.sh test` drops when a run left it behind) and pools of at most 4
/// connections a server: many tests share the servers.
pub fn settings() -> ClusterSettings {
    let mut settings: ClusterSettings = config::load(None).expect("settings");
    assert!(
        !secrecy::ExposeSecret::expose_secret(&settings.database.password).is_empty(),
        "no database password: run `eval \"$(./setup.sh env)\"` first"
    );
    settings.database.dbname = format!("sgtest_scratch_{}", uuid::Uuid::new_v4().simple());
    settings.database.pool_max_size = 4;
    settings
}

impl Scratch {
    /// Creates the databases, migrates the shards, seeds the map and tells the shards;
    /// returns once every replica has replayed all of it.
    pub async fn create() -> Self {
        Self::create_with(|_| {}).await
    }

    /// [`create`](Self::create), after letting the test adjust the settings.
    pub async fn create_with(adjust: impl FnOnce(&mut ClusterSettings)) -> Self {
        let mut settings = settings();
        adjust(&mut settings);
        let name = settings.database.dbname.clone();
        settings.metadata.dbname = name.clone();
        // Made first, so that whatever was created is dropped if a step fails.
        let scratch = Self { settings };
        let cluster = scratch.settings.clone();
        tokio::task::spawn_blocking(move || create_databases(&cluster, &name))
            .await
            .expect("create the scratch databases");
        for shard in &scratch.settings.shards {
            migrate(&scratch.settings, &shard.primary).await;
        }
        control_plane::map::change::init(&scratch.settings)
            .await
            .expect("init: seed the map, tell the shards");
        scratch.replayed().await;
        scratch
    }

    /// The request path's cluster the scratch settings describe, routing with the
    /// configured map.
    pub fn cluster(&self) -> Cluster {
        Cluster::new(self.settings.clone()).expect("a cluster")
    }

    /// `shard`'s primary address.
    pub fn primary(&self, shard: ShardId) -> String {
        self.settings.shards[shard.index()].primary.clone()
    }

    /// `shard`'s first replica's address.
    pub fn replica(&self, shard: ShardId) -> String {
        self.settings.shards[shard.index()].replicas[0].clone()
    }

    /// Makes `shard`'s primary own exactly `slots`, going by map `version`, in plain SQL
    /// (what the control plane's `map::ownership::tell` does, without the stored map).
    pub async fn tell(&self, shard: ShardId, slots: &[i32], version: i64) {
        let mut client = self.connect(&self.primary(shard)).await;
        let tx = client.transaction().await.expect("begin");
        tx.execute("DELETE FROM shardgate_slots", &[])
            .await
            .expect("forget the slots");
        tx.execute(
            "INSERT INTO shardgate_slots (slot, since) SELECT unnest($1::int[]), $2",
            &[&slots, &version],
        )
        .await
        .expect("own the slots");
        tx.execute(
            "INSERT INTO shardgate_map (shard, version) VALUES ($1, $2)
             ON CONFLICT (singleton) DO UPDATE
                SET shard = excluded.shard, version = excluded.version, updated_at = now()",
            &[&(shard.0 as i32), &version],
        )
        .await
        .expect("the map version");
        tx.commit().await.expect("commit");
    }

    /// Waits (up to 20 s) until every replica has replayed what its primary has
    /// written so far.
    pub async fn replayed(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for shard in &self.settings.shards {
            let primary = connect_to(&self.settings, &shard.primary, "postgres").await;
            let written: String = primary
                .query_one("SELECT pg_current_wal_lsn()::text", &[])
                .await
                .expect("the primary's position")
                .get(0);
            for replica in &shard.replicas {
                let replica = connect_to(&self.settings, replica, "postgres").await;
                loop {
                    let caught_up: bool = replica
                        .query_one(
                            "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false)",
                            &[&written],
                        )
                        .await
                        .expect("the replica's position")
                        .get(0);
                    if caught_up {
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "a replica never replayed {written}"
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    /// A connection to this scratch database on `server`.
    pub async fn connect(&self, server: &str) -> Client {
        let name = self.settings.database.dbname.clone();
        connect_to(&self.settings, server, &name).await
    }

    /// A connection to the scratch metadata database.
    pub async fn meta(&self) -> Client {
        control_plane::map::meta::connect(&self.settings)
            .await
            .expect("metadata connection")
            .client
    }

    pub async fn map(&self) -> ShardMap {
        control_plane::map::change::current(&self.settings)
            .await
            .expect("the stored map")
    }

    /// Writes `rows` as records of `events`, each on the shard the stored map names.
    pub async fn write(&self, rows: &[SourceRow]) {
        self.write_to("events", rows).await
    }

    /// Writes `rows` as records of `table`, each on the shard the stored map names.
    pub async fn write_to(&self, table: &str, rows: &[SourceRow]) {
        let mut writer = Writer::open(&self.settings, table).await.expect("writer");
        writer.apply(rows, &[]).await.expect("write records");
    }

    /// (key, id, data) of every record in `slot` on `shard`'s primary.
    pub async fn records(&self, shard: ShardId, slot: i32) -> BTreeSet<(String, String, String)> {
        let primary = self.settings.shards[shard.index()].primary.clone();
        let client = self.connect(&primary).await;
        let rows = client
            .query(
                "SELECT shard_key, id, data::text FROM records WHERE slot = $1",
                &[&slot],
            )
            .await
            .expect("read records");
        rows.iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    }

    /// The move, once no process holds its lock any more (a dead mover's session may
    /// take a moment to end on the server).
    pub async fn stopped(&self, id: i64) -> Move {
        let meta = self.meta().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mv = Moves::new(&meta).get(id).await.expect("the move");
            if !mv.running {
                return mv;
            }
            assert!(Instant::now() < deadline, "still held: {mv:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `per_key` records under each of `keys` keys that route to one slot `from` owns
/// (first), then one record under each of `noise` keys of other slots; the slot.
pub fn rows_in_one_slot(
    map: &ShardMap,
    from: ShardId,
    keys: usize,
    per_key: usize,
    noise: usize,
) -> (i32, Vec<SourceRow>) {
    let router = map.router().expect("router");
    let slot_of = |n: usize| {
        let key = format!("job-{n}");
        let routed = router.route(ShardKey::parse(&key).unwrap()).unwrap();
        (routed.slot().0 as i32, routed.shard(), key)
    };
    let slot = (0..)
        .map(slot_of)
        .find(|(_, shard, _)| *shard == from)
        .map(|(slot, _, _)| slot)
        .unwrap();
    let (mut rows, mut others) = (Vec::new(), Vec::new());
    let (mut found, mut n) = (0, 0);
    while found < keys || others.len() < noise {
        let (at, _, key) = slot_of(n);
        if at == slot && found < keys {
            found += 1;
            rows.extend((0..per_key).map(|i| record(&key, i, 0)));
        } else if at != slot && others.len() < noise {
            others.push(record(&key, 0, 0));
        }
        n += 1;
    }
    rows.extend(others);
    (slot, rows)
}

/// A record of `key`, id `e{i}`, with version `v` of its data.
pub fn record(key: &str, i: usize, v: u32) -> SourceRow {
    SourceRow {
        key: key.to_owned(),
        id: format!("e{i}"),
        data: serde_json::json!({ "n": i, "v": v }).to_string(),
    }
}

impl Drop for Scratch {
    /// Drops the scratch databases (FORCE ends what is still connected).
    fn drop(&mut self) {
        drop_databases(&self.settings, &self.settings.database.dbname);
    }
}

/// Drops the metadata scratch database (`settings.metadata.dbname`) however the test
/// ends, as the superuser when there is one ([`maintenance_as_superuser`]).
pub struct MetaScratch(pub ClusterSettings);

impl MetaScratch {
    /// A new, empty metadata database named `prefix` and a UUID, on the configured
    /// metadata server; the settings name it.
    pub async fn empty(prefix: &str) -> Self {
        let mut settings: ClusterSettings = config::load(None).expect("settings");
        settings.metadata.dbname = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let scratch = Self(settings);
        let settings = &scratch.0;
        crate::maintenance::maintenance(
            settings,
            &settings.metadata.address,
            &format!("CREATE DATABASE {}", settings.metadata.dbname),
        )
        .await;
        scratch
    }
}

impl Drop for MetaScratch {
    fn drop(&mut self) {
        let settings = self.0.clone();
        on_own_runtime(async move {
            let drop = format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                settings.metadata.dbname
            );
            maintenance_as_superuser(&settings, &settings.metadata.address, &drop).await;
        });
    }
}

/// The shards' migrations on `addr`'s scratch database (`settings.database.dbname`), by
/// the one runner `shard-admin migrate` uses (`control_plane::migrations`), recorded as
/// it records them, so the health monitor finds the schema complete.
pub async fn migrate(settings: &ClusterSettings, addr: &str) {
    migrate_database(&settings.database, addr).await
}

/// [`migrate`] on the database `db` names on `addr`, as `db`'s role (a private server's
/// own settings).
pub async fn migrate_database(db: &DatabaseSettings, addr: &str) {
    let (mut client, connection) = control_plane::postgres::connect(&connection_url(db, addr), db)
        .await
        .unwrap_or_else(|e| panic!("connect to {} on {addr}: {e}", db.dbname));
    tokio::spawn(connection);
    migrations::apply(&mut client, migrations::SHARD, migrations::SHARD_LOCK)
        .await
        .unwrap_or_else(|e| panic!("the shards' migrations on {addr}: {e}"));
}

/// Every slot the router gives `shard`.
pub fn slots_of(router: &Router, shard: ShardId) -> Vec<i32> {
    router
        .ranges_of(shard)
        .into_iter()
        .flat_map(|(from, to)| from as i32..=to as i32)
        .collect()
}
