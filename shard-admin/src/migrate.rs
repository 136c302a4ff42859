//! The shards' migrations (`migrations/`) applied to every shard's primary (replicas
//! follow by WAL) by the control plane's one runner (`control_plane::migrations`, which
//! embeds their SQL); the request path (`shard_manager::store::migrations`) lists only
//! their names, to tell which a server lacks. Also the admin pool and CREATE DATABASE.

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool};

use control_plane::migrations;
use control_plane::postgres::with_causes;
use shard_manager::config::{ClusterSettings, DatabaseSettings};
use shard_manager::servers::connection_url;

/// Admin work that failed, naming the server.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot connect to {server}: {source}")]
    Connect {
        server: String,
        #[source]
        source: diesel::r2d2::PoolError,
    },
    #[error("cannot connect to {server}: {message}")]
    Open { server: String, message: String },
    #[error("migrating {server} failed: {message}")]
    Migrate { server: String, message: String },
    #[error("creating database {name} on {server} failed: {source}")]
    CreateDatabase {
        server: String,
        name: String,
        #[source]
        source: diesel::result::Error,
    },
}

/// Admin work (migrations, CREATE DATABASE) may take longer than a request may: its
/// connections lift the request-path statement timeout.
#[derive(Debug)]
struct NoStatementTimeout;

impl diesel::r2d2::CustomizeConnection<PgConnection, diesel::r2d2::Error> for NoStatementTimeout {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute("SET statement_timeout = 0")
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// A pool that opens a connection only when asked (`min_idle` 0). With r2d2's default
/// (`min_idle` = `max_size`) a worker thread opens a second, unused connection in the
/// background; a command that finishes first exits while that thread is inside libpq's
/// TLS handshake, OpenSSL's exit handlers free what it uses, and the command dies of
/// SIGSEGV after doing its work (10 runs in 100).
pub fn admin_pool(url: String) -> Pool<ConnectionManager<PgConnection>> {
    Pool::builder()
        .max_size(2)
        .min_idle(Some(0))
        .connection_timeout(std::time::Duration::from_secs(5))
        .connection_customizer(Box::new(NoStatementTimeout))
        .build_unchecked(ConnectionManager::new(url))
}

/// Applies pending migrations on every primary; returns the versions applied per shard.
pub fn migrate_all(settings: &ClusterSettings) -> Result<Vec<Vec<String>>, AdminError> {
    settings
        .shards
        .iter()
        .map(|shard| migrate_server(settings, &shard.primary))
        .collect()
}

/// Applies pending migrations on every primary of the stored map (shards added since
/// the configuration was written included), or of the configuration when there is no
/// map yet; (primary, versions applied) per shard.
pub fn migrate_cluster(
    settings: &ClusterSettings,
) -> Result<Vec<(String, Vec<String>)>, AdminError> {
    let stored = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()
        .and_then(|rt| {
            rt.block_on(control_plane::map::change::current(settings))
                .ok()
        });
    let primaries: Vec<String> = match stored {
        Some(map) => map.shards.iter().map(|s| s.primary.clone()).collect(),
        None => settings.shards.iter().map(|s| s.primary.clone()).collect(),
    };
    primaries
        .into_iter()
        .map(|p| migrate_server(settings, &p).map(|applied| (p, applied)))
        .collect()
}

/// Applies pending migrations on one server (a shard's primary, or a new one about to
/// join); the versions applied.
pub fn migrate_server(settings: &ClusterSettings, server: &str) -> Result<Vec<String>, AdminError> {
    migrate_database(&settings.database, server)
}

/// Applies pending migrations to the database `db` names on `server`, in one
/// transaction under `migrations::SHARD_LOCK`, with no statement timeout (a migration
/// may rightly take longer than a request); the versions applied, oldest first.
pub fn migrate_database(db: &DatabaseSettings, server: &str) -> Result<Vec<String>, AdminError> {
    let failed = |message: String| AdminError::Migrate {
        server: server.to_owned(),
        message,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(format!("cannot start a runtime: {e}")))?;
    rt.block_on(async {
        let (mut client, driver) =
            control_plane::postgres::connect(&connection_url(db, server), db)
                .await
                .map_err(|message| AdminError::Open {
                    server: server.to_owned(),
                    message,
                })?;
        let driver = tokio::spawn(driver);
        client
            .batch_execute("SET statement_timeout = 0")
            .await
            .map_err(|e| failed(with_causes(&e)))?;
        let applied = migrations::apply(&mut client, migrations::SHARD, migrations::SHARD_LOCK)
            .await
            .map_err(|e| failed(with_causes(&e)))?;
        drop(client);
        // The connection ends with its client; its outcome adds nothing once committed.
        let _ = driver.await;
        Ok(applied.into_iter().map(str::to_owned).collect())
    })
}

/// Creates database `name` on every primary (tests use fresh, uniquely named ones).
/// `name` must be a plain identifier; it is checked, since DDL cannot take parameters.
pub fn create_database(settings: &ClusterSettings, name: &str) -> Result<(), AdminError> {
    assert!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database names are identifiers"
    );
    let mut maintenance = settings.database.clone();
    maintenance.dbname = "postgres".into();
    for shard in &settings.shards {
        let pool = admin_pool(connection_url(&maintenance, &shard.primary));
        let mut conn = pool.get().map_err(|source| AdminError::Connect {
            server: shard.primary.clone(),
            source,
        })?;
        conn.batch_execute(&format!("CREATE DATABASE {name}"))
            .map_err(|source| AdminError::CreateDatabase {
                server: shard.primary.clone(),
                name: name.to_owned(),
                source,
            })?;
    }
    Ok(())
}
