//! A backup's failures: each names the server, stanza or job in the way, and none
//! leaves a restore point recorded as good.

use crate::map::MapError;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Something else changes the cluster now; nothing was done.
    #[error("backup refused: {0}")]
    Refused(String),
    /// A restore that would be wrong, or would lose what the refusal names: nothing
    /// was changed.
    #[error("restore refused: {0}")]
    RestoreRefused(String),
    /// A restore step failed part-way; servers before it are restored, the others not.
    #[error("restore of {server} failed while {step}: {reason}")]
    RestoreStep {
        server: String,
        step: String,
        reason: String,
    },
    /// The pgbackrest program is not there.
    #[error("pgbackrest is not installed ({program} not found): install the Debian package pgbackrest (./setup.sh up does)")]
    NotInstalled { program: String },
    /// pgBackRest's configuration file is not there.
    #[error("pgBackRest configuration {path} not found: ./setup.sh up writes it, or set backup.pgbackrest_config")]
    NoConfig { path: String },
    /// pgBackRest's repository directory is not there.
    #[error("pgBackRest repository {path} (repo1-path in {config}) does not exist: mount or restore it; a new, empty one needs `pgbackrest --stanza=NAME stanza-create` for every stanza (./setup.sh up does); nothing was done")]
    RepoMissing { path: String, config: String },
    /// The servers' OS user may not write the repository.
    #[error("pgBackRest repository {path} is not writable by {user}: give the directory to that user (chown -R {user} {path}); nothing was done")]
    RepoNotWritable { path: String, user: String },
    /// A backup failed with the repository's filesystem full.
    #[error("pgBackRest repository {path} is full (no space left: {free} bytes free of {size}): {failed}; free space there (`pgbackrest expire`, a lower repo1-retention-full, a larger disk), then run the backup again; no restore point was recorded")]
    RepoFull {
        path: String,
        free: u64,
        size: u64,
        /// pgbackrest's failure, as [`BackupError::Pgbackrest`] tells it.
        failed: String,
    },
    /// The stanza was never created (pgBackRest error 055: its info file is missing).
    #[error("stanza {stanza} ({server}) does not exist in the pgBackRest repository: run `pgbackrest --stanza={stanza} stanza-create` (./setup.sh up does)")]
    StanzaMissing { stanza: String, server: String },
    /// pgbackrest ran and failed.
    #[error("pgbackrest {action} of stanza {stanza} ({server}) failed (exit {code}): {detail}")]
    Pgbackrest {
        action: String,
        stanza: String,
        server: String,
        code: i32,
        detail: String,
    },
    /// A server could not be reached or refused a statement.
    #[error("{server}: {reason}")]
    Server { server: String, reason: String },
    /// The WAL holding the point was not archived in time: the point could not be
    /// restored to, so it is not recorded.
    #[error("{server}: the WAL holding restore point {point} was not archived within {waited_ms} ms (pg_stat_archiver: {detail})")]
    NotArchived {
        server: String,
        point: String,
        waited_ms: u128,
        detail: String,
    },
    #[error(transparent)]
    Map(#[from] MapError),
}

impl BackupError {
    pub fn server(server: impl std::fmt::Display, err: impl std::fmt::Display) -> Self {
        BackupError::Server {
            server: server.to_string(),
            reason: err.to_string(),
        }
    }

    /// A statement refused on a server: the server's message and SQLSTATE (a bare
    /// tokio-postgres error only says "db error").
    pub fn query(server: impl std::fmt::Display, doing: &str, err: tokio_postgres::Error) -> Self {
        let reason = match err.as_db_error() {
            Some(db) => format!("{doing}: {} (SQLSTATE {})", db.message(), db.code().code()),
            None => format!("{doing}: {err}"),
        };
        BackupError::Server {
            server: server.to_string(),
            reason,
        }
    }
}
