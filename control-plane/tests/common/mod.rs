//! Helpers the control plane's integration tests share: statements on a server's
//! maintenance database, the metadata scratch database dropped however a test ends, and
//! every migration applied to a scratch database the way `shard-admin migrate` leaves
//! it.

use std::path::Path;

use shard_manager::ClusterSettings;

/// Runs `sql` on `addr`'s maintenance database.
pub async fn maintenance(settings: &ClusterSettings, addr: &str, sql: &str) {
    let mut db = settings.database.clone();
    db.dbname = "postgres".into();
    run_maintenance(db, addr, sql).await
}

/// [`maintenance`] as the superuser `setup.sh` made (its password from the repository's
/// `.local/credentials.env`), when there is one: a `DROP DATABASE … WITH (FORCE)` then
/// ends every session of the scratch database, whatever role holds it, where the
/// gateway's role may end only its own. As the gateway's role otherwise. (The failover
/// tests use it; `map_drives_requests` shares this file.)
#[allow(dead_code)]
pub async fn maintenance_as_superuser(settings: &ClusterSettings, addr: &str, sql: &str) {
    let mut db = settings.database.clone();
    db.dbname = "postgres".into();
    let root = std::env::var("SHARDGATE_REPO")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    let password = std::fs::read_to_string(root.join(".local/credentials.env"))
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                line.strip_prefix("SHARDGATE_PG_SUPERUSER_PASSWORD=")
                    .map(str::to_owned)
            })
        });
    if let Some(password) = password {
        db.user = "postgres".into();
        db.password = password.into();
    }
    run_maintenance(db, addr, sql).await
}

/// Drops the metadata scratch database (`settings.metadata.dbname`) however the test
/// ends, as the superuser when there is one ([`maintenance_as_superuser`]). (The
/// failover tests and `gateway_listing` use it; `map_drives_requests` shares this file.)
#[allow(dead_code)]
pub struct MetaScratch(pub ClusterSettings);

impl MetaScratch {
    /// A new, empty metadata database named `prefix` and a UUID, on the configured
    /// metadata server; the settings name it.
    #[allow(dead_code)]
    pub async fn empty(prefix: &str) -> Self {
        let mut settings: ClusterSettings = shard_manager::config::load(None).expect("settings");
        settings.metadata.dbname = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let scratch = Self(settings);
        let settings = &scratch.0;
        maintenance(
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

/// Runs `work` to its end on a thread and runtime of its own: a drop guard's clean-up,
/// which may run while the test's runtime unwinds. A panic in it is not passed on.
pub fn on_own_runtime(work: impl std::future::Future<Output = ()> + Send + 'static) {
    let _ = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(work)
    })
    .join();
}

async fn run_maintenance(db: shard_manager::config::DatabaseSettings, addr: &str, sql: &str) {
    let url = shard_manager::servers::connection_url(&db, addr);
    let (client, conn) = control_plane::postgres::connect(&url, &db)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    tokio::spawn(conn);
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql} on {addr}: {e:?}"));
}

/// Every migration's `up.sql`, in order, on `addr`'s scratch database
/// (`settings.database.dbname`), recorded as `shard-admin migrate` records them.
pub async fn migrate(settings: &ClusterSettings, addr: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("migrations/")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.join("up.sql").exists())
        .collect();
    dirs.sort();
    let url = shard_manager::servers::connection_url(&settings.database, addr);
    let (client, conn) = control_plane::postgres::connect(&url, &settings.database)
        .await
        .expect("connect to the pair's database");
    tokio::spawn(conn);
    for dir in dirs {
        let sql = std::fs::read_to_string(dir.join("up.sql")).expect("up.sql");
        client
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("{} on {addr}: {e}", dir.display()));
    }
    // Recorded as `shard-admin migrate` records them, so the monitor finds the schema
    // complete.
    let versions: Vec<String> = shard_manager::store::migrations::expected()
        .into_iter()
        .map(|m| m.version)
        .collect();
    client
        .batch_execute(
            "CREATE TABLE __diesel_schema_migrations (
                 version VARCHAR(50) PRIMARY KEY NOT NULL,
                 run_on  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
        )
        .await
        .expect("the migrations table");
    client
        .execute(
            "INSERT INTO __diesel_schema_migrations (version) SELECT unnest($1::text[])",
            &[&versions],
        )
        .await
        .expect("record the migrations");
}
