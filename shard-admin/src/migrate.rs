//! Embedded migrations, applied to every shard's primary (replicas follow by WAL).
//! Their SQL is compiled in here; the request path (`shard_manager::store::migrations`)
//! lists only their names, to tell which a server lacks.

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use shard_manager::config::ClusterSettings;
use shard_manager::servers::connection_url;

/// The SQL in `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// Admin work that failed, naming the server.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot connect to {server}: {source}")]
    Connect {
        server: String,
        #[source]
        source: diesel::r2d2::PoolError,
    },
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
/// (`min_idle` = `max_size`) a worker thread kept opening a second, unused connection
/// in the background; when the command finished first, the process exited while that
/// thread was inside libpq's TLS handshake, OpenSSL's exit handlers freed what it was
/// using, and the command died of SIGSEGV after doing its work (10 runs in 100).
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
    let pool = admin_pool(connection_url(&settings.database, server));
    let mut conn = pool.get().map_err(|source| AdminError::Connect {
        server: server.to_owned(),
        source,
    })?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map_err(|e| AdminError::Migrate {
            server: server.to_owned(),
            message: e.to_string(),
        })?;
    Ok(applied.iter().map(|v| v.to_string()).collect())
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

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::migration::MigrationSource;
    use diesel::pg::Pg;
    use shard_manager::store::migrations::{expected, Migration};

    #[test]
    fn the_request_path_names_the_migrations_this_binary_applies() {
        let mut embedded: Vec<Migration> = MigrationSource::<Pg>::migrations(&MIGRATIONS)
            .expect("the embedded migrations")
            .iter()
            .map(|m| Migration {
                version: m.name().version().to_string(),
                name: m.name().to_string(),
            })
            .collect();
        embedded.sort_by(|a, b| a.version.cmp(&b.version));
        assert_eq!(expected(), embedded);
    }
}
