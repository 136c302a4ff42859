//! A scratch cluster on the real topology, for the control plane's own tests (no
//! gateway): a uniquely named database on every primary (the shards' migrations
//! applied from the repository's `migrations/`, as `shard-admin migrate` applies
//! them) and on the metadata server, the map seeded and told to the shards as
//! `shard-admin init` does. The shared map never changes; the databases are dropped
//! when the [`Scratch`] is.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use control_plane::import::shards::Writer;
use control_plane::import::source::SourceRow;
use control_plane::moves::{Move, Moves};
use control_plane::postgres;
use shard_manager::config::{self, ClusterSettings};
use shard_manager::live_map::ShardMap;
use shard_manager::servers::connection_url;
use shard_manager::{ShardId, ShardKey};
use tokio_postgres::Client;

/// The scratch databases and the settings that name them.
pub struct Scratch {
    pub settings: ClusterSettings,
}

/// The repository root (`SHARDGATE_REPO`, or this crate's parent).
fn repo_root() -> PathBuf {
    std::env::var("SHARDGATE_REPO")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
}

/// Connects to `dbname` on `server` with `[database]`'s credentials.
async fn connect_to(settings: &ClusterSettings, server: &str, dbname: &str) -> Client {
    let mut db = settings.database.clone();
    db.dbname = dbname.to_owned();
    let (client, connection) = postgres::connect(&connection_url(&db, server), &db)
        .await
        .unwrap_or_else(|e| panic!("connect to {dbname} on {server}: {e}"));
    tokio::spawn(connection);
    client
}

/// The shards' migrations, in the order their directory names give.
fn migrations() -> Vec<(String, String)> {
    let dir = repo_root().join("migrations");
    let mut found: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("up.sql").exists())
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(path.join("up.sql")).unwrap())
        })
        .collect();
    found.sort();
    found
}

impl Scratch {
    /// Creates the databases, migrates the shards and seeds the map.
    pub async fn create() -> Self {
        let mut settings: ClusterSettings = config::load(None).expect("settings");
        let name = format!("sgjobs_{}", uuid::Uuid::new_v4().simple());
        settings.database.dbname = name.clone();
        settings.metadata.dbname = name.clone();
        let scratch = Self { settings };
        for server in scratch.servers() {
            let admin = connect_to(&scratch.settings, &server, "postgres").await;
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap_or_else(|e| panic!("create {name} on {server}: {e}"));
        }
        for shard in &scratch.settings.shards {
            let client = scratch.connect(&shard.primary).await;
            for (migration, sql) in migrations() {
                let run = format!("BEGIN; {sql}; COMMIT;");
                client
                    .batch_execute(&run)
                    .await
                    .unwrap_or_else(|e| panic!("{migration} on {}: {e}", shard.primary));
            }
        }
        control_plane::map::change::init(&scratch.settings)
            .await
            .expect("init: seed the map, tell the shards");
        scratch
    }

    /// Every primary, and the metadata server.
    fn servers(&self) -> Vec<String> {
        let mut servers: Vec<String> = self
            .settings
            .shards
            .iter()
            .map(|s| s.primary.clone())
            .collect();
        servers.push(self.settings.metadata.address.clone());
        servers
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
    /// Drops the scratch databases (FORCE ends what is still connected), on a thread
    /// of its own: a test's runtime cannot block on them.
    fn drop(&mut self) {
        let settings = self.settings.clone();
        let servers = self.servers();
        let dropping = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let name = settings.database.dbname.clone();
                for server in servers {
                    let admin = connect_to(&settings, &server, "postgres").await;
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    if let Err(e) = admin.batch_execute(&sql).await {
                        eprintln!("drop {name} on {server}: {e}");
                    }
                }
            });
        });
        let _ = dropping.join();
    }
}
