//! A scratch database on the real topology, for the request path's own tests (no gateway,
//! no control plane): one uniquely named database (`sgtest_sm_*`) on every primary, which
//! streaming replication brings to the replicas; the shards' migrations applied from the
//! repository's `migrations/` and recorded as `shard-admin migrate` records them; each
//! shard told the slots the configured map gives it, at map version 1, as
//! `shard-admin init` tells them. Set up and inspected in plain SQL (tokio-postgres),
//! never through the code under test. The shared databases and map are never touched;
//! the scratch databases are dropped when the [`Scratch`] is.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use shard_manager::config::{self, ClusterSettings};
use shard_manager::servers::connection_url;
use shard_manager::{Cluster, Router, ShardId};
use tokio_postgres::{Client, NoTls};

/// The map version the scratch shards are told first.
pub const TOLD_AT: i64 = 1;

/// The scratch databases and the settings that name them.
pub struct Scratch {
    pub settings: ClusterSettings,
}

/// The settings `./setup.sh up` serves, from the built-in defaults and the environment
/// of `eval "$(./setup.sh env)"`, with a fresh database name.
pub fn settings() -> ClusterSettings {
    let mut settings: ClusterSettings = config::load(None).expect("settings");
    assert!(
        !secrecy::ExposeSecret::expose_secret(&settings.database.password).is_empty(),
        "no database password: run `eval \"$(./setup.sh env)\"` first"
    );
    settings.database.dbname = format!("sgtest_sm_{}", uuid::Uuid::new_v4().simple());
    settings.database.pool_max_size = 4;
    settings
}

/// Connects to `dbname` on `server` with `[database]`'s credentials.
pub async fn connect_to(settings: &ClusterSettings, server: &str, dbname: &str) -> Client {
    let mut db = settings.database.clone();
    db.dbname = dbname.to_owned();
    let (client, connection) = tokio_postgres::connect(&connection_url(&db, server), NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {dbname} on {server}: {e}"));
    tokio::spawn(connection);
    client
}

/// The shards' migrations (folder name, `up.sql`), in the order their names give.
fn migrations() -> Vec<(String, String)> {
    let root = std::env::var("SHARDGATE_REPO")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."));
    let dir = root.join("migrations");
    let mut found: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a migration").path())
        .filter(|path| path.join("up.sql").exists())
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(path.join("up.sql")).unwrap())
        })
        .collect();
    found.sort();
    assert!(found.len() >= 8, "found {} migrations", found.len());
    found
}

/// diesel's version of a migration folder: the digits before the first `_`.
pub fn version_of(folder: &str) -> String {
    let stamp = folder.split('_').next().unwrap_or(folder);
    stamp.chars().filter(char::is_ascii_digit).collect()
}

impl Scratch {
    /// Creates, migrates and tells every shard; returns once every replica has replayed
    /// all of it.
    pub async fn create() -> Self {
        Self::create_with(|_| {}).await
    }

    /// [`create`](Self::create), after letting the test adjust the settings.
    pub async fn create_with(adjust: impl FnOnce(&mut ClusterSettings)) -> Self {
        let mut settings = settings();
        adjust(&mut settings);
        let scratch = Self { settings };
        let name = scratch.settings.database.dbname.clone();
        let router = scratch.settings.validate().expect("valid settings");
        for (index, shard) in scratch.settings.shards.iter().enumerate() {
            let admin = connect_to(&scratch.settings, &shard.primary, "postgres").await;
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap_or_else(|e| panic!("create {name} on {}: {e}", shard.primary));
            let client = scratch.connect(&shard.primary).await;
            client
                .batch_execute(
                    "CREATE TABLE __diesel_schema_migrations (
                         version VARCHAR(50) PRIMARY KEY NOT NULL,
                         run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
                )
                .await
                .expect("the migrations table");
            for (folder, sql) in migrations() {
                let record = format!(
                    "INSERT INTO __diesel_schema_migrations (version) VALUES ('{}')",
                    version_of(&folder)
                );
                client
                    .batch_execute(&format!("BEGIN; {sql}; {record}; COMMIT;"))
                    .await
                    .unwrap_or_else(|e| panic!("{folder} on {}: {e}", shard.primary));
            }
            let slots = slots_of(&router, ShardId(index as u32));
            scratch.tell(ShardId(index as u32), &slots, TOLD_AT).await;
        }
        scratch.replayed().await;
        scratch
    }

    /// The cluster the scratch settings describe, routing with the configured map.
    pub fn cluster(&self) -> Cluster {
        Cluster::new(self.settings.clone()).expect("a cluster")
    }

    /// A connection to the scratch database on `server`.
    pub async fn connect(&self, server: &str) -> Client {
        connect_to(&self.settings, server, &self.settings.database.dbname).await
    }

    /// `shard`'s primary address.
    pub fn primary(&self, shard: ShardId) -> String {
        self.settings.shards[shard.index()].primary.clone()
    }

    /// `shard`'s first replica's address.
    pub fn replica(&self, shard: ShardId) -> String {
        self.settings.shards[shard.index()].replicas[0].clone()
    }

    /// Makes `shard`'s primary own exactly `slots`, going by map `version` (what the
    /// control plane's `map::ownership::tell` does, in its SQL).
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

    /// Waits until every replica has replayed what its primary has written so far.
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
}

/// Every slot the router gives `shard`.
pub fn slots_of(router: &Router, shard: ShardId) -> Vec<i32> {
    router
        .ranges_of(shard)
        .into_iter()
        .flat_map(|(from, to)| from as i32..=to as i32)
        .collect()
}

impl Drop for Scratch {
    /// Drops the scratch databases (FORCE ends what is still connected), on a thread of
    /// its own: a test's runtime cannot block on them.
    fn drop(&mut self) {
        let settings = self.settings.clone();
        let dropping = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let name = &settings.database.dbname;
                for shard in &settings.shards {
                    let admin = connect_to(&settings, &shard.primary, "postgres").await;
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    if let Err(e) = admin.batch_execute(&sql).await {
                        eprintln!("drop {name} on {}: {e}", shard.primary);
                    }
                }
            });
        });
        let _ = dropping.join();
    }
}
