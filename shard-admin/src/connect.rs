//! Connections for the admin commands (`plan`, `seed`, `bench`): one plain synchronous
//! connection per primary and per worker, to the configured database or a scratch one,
//! and the errors those commands report.
//!
//! These commands hold a connection for their whole run (a cursor, a writer thread, a
//! benchmark client), so they connect directly rather than through a pool.

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::Connection;

use crate::migrate::migrate_database;
use shard_manager::config::DatabaseSettings;
use shard_manager::servers::connection_url;

/// An admin command that failed, naming the server and what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot connect to {server} (database {dbname}): {source}")]
    Connect {
        server: String,
        dbname: String,
        #[source]
        source: diesel::ConnectionError,
    },
    #[error("{what} on {server} failed: {source}")]
    Query {
        server: String,
        what: &'static str,
        #[source]
        source: diesel::result::Error,
    },
    #[error("migrating {dbname} on {server} failed: {message}")]
    Migrate {
        server: String,
        dbname: String,
        message: String,
    },
    #[error("{0}")]
    Usage(String),
    #[error("cannot start a worker thread: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("the {0} thread stopped unexpectedly (it panicked)")]
    WorkerPanicked(String),
}

impl CommandError {
    /// A closure for `map_err` that names the server and the work.
    pub fn query(server: &str, what: &'static str) -> impl FnOnce(diesel::result::Error) -> Self {
        let server = server.to_owned();
        move |source| Self::Query {
            server,
            what,
            source,
        }
    }
}

/// Opens a connection to `dbname` on `server` with the configured user, password and
/// connect timeout. The request path's statement timeout is lifted: a plan's scan or a
/// seed's batch may rightly take longer than any request.
pub fn connect(
    db: &DatabaseSettings,
    server: &str,
    dbname: &str,
) -> Result<PgConnection, CommandError> {
    let mut settings = db.clone();
    settings.dbname = dbname.to_owned();
    let mut conn =
        PgConnection::establish(&connection_url(&settings, server)).map_err(|source| {
            CommandError::Connect {
                server: server.to_owned(),
                dbname: dbname.to_owned(),
                source,
            }
        })?;
    conn.batch_execute("SET statement_timeout = 0")
        .map_err(CommandError::query(server, "lifting the statement timeout"))?;
    Ok(conn)
}

/// Drops `name` on `server` if it exists (closing its sessions), creates it afresh and
/// applies the shards' migrations. Only for the commands' own scratch databases:
/// `name` must be a plain identifier, since DDL takes no parameters.
pub fn recreate_scratch(
    db: &DatabaseSettings,
    server: &str,
    name: &str,
) -> Result<(), CommandError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        return Err(CommandError::Usage(format!(
            "scratch database name {name:?} must be lowercase letters and underscores"
        )));
    }
    let mut maintenance = connect(db, server, "postgres")?;
    // Two messages: neither statement may run inside the implicit transaction that a
    // multi-statement simple query opens.
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        maintenance
            .batch_execute(&sql)
            .map_err(CommandError::query(server, "recreating a scratch database"))?;
    }
    let mut scratch = db.clone();
    scratch.dbname = name.to_owned();
    migrate_database(&scratch, server).map_err(|e| CommandError::Migrate {
        server: server.to_owned(),
        dbname: name.to_owned(),
        message: e.to_string(),
    })?;
    Ok(())
}
