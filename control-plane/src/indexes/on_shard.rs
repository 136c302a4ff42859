//! One primary as index work sees it: a connection of its own (never a pool's), the
//! index's state in the catalog, its lock, a build and a drop. `CONCURRENTLY` cannot run
//! in a transaction: each statement here is sent alone.

use shard_manager::config::ClusterSettings;
use shard_manager::error::sqlstate;
use shard_manager::servers::connection_url;
use shard_manager::store::query_index::{
    drop_sql, lock_key, IndexSpec, LOCK_HELD_SQL, LOCK_SPACE, STATE_SQL,
};
use tokio_postgres::Client;

use super::IndexError;
use crate::postgres::connect;

/// An index in one shard's catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Catalog {
    Missing,
    /// Left by a build that has not finished, or that stopped (`indisvalid` false).
    Invalid,
    Valid,
}

/// Why a build or drop stopped: `transient` when the server went away (a restart,
/// a lost connection: worth trying again), else what the server refused.
#[derive(Debug)]
pub struct WorkError {
    pub transient: bool,
    pub reason: String,
}

impl From<tokio_postgres::Error> for WorkError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            // A server shutting down, starting or short of resources; a cancel or a
            // timeout is an end, not an interruption (the SQLSTATE table's `interrupted`).
            Some(db) => {
                let code = db.code().code();
                Self {
                    transient: sqlstate::interrupted(code),
                    reason: format!("{} (SQLSTATE {code})", db.message()),
                }
            }
            None => Self {
                transient: true,
                reason: e.to_string(),
            },
        }
    }
}

/// A connection to one shard's primary for index work.
pub struct Primary {
    pub shard: u32,
    pub server: String,
    client: Client,
}

impl Primary {
    pub async fn open(
        settings: &ClusterSettings,
        shard: u32,
        server: &str,
    ) -> Result<Self, IndexError> {
        let url = connection_url(&settings.database, server);
        let (client, connection) =
            connect(&url, &settings.database)
                .await
                .map_err(|reason| IndexError::Shard {
                    shard,
                    server: server.to_owned(),
                    doing: "connecting",
                    reason,
                })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "index work connection ended");
            }
        });
        Ok(Self {
            shard,
            server: server.to_owned(),
            client,
        })
    }

    fn fail(&self, doing: &'static str) -> impl Fn(tokio_postgres::Error) -> IndexError + '_ {
        move |e| IndexError::Shard {
            shard: self.shard,
            server: self.server.clone(),
            doing,
            reason: WorkError::from(e).reason,
        }
    }

    /// The index `name` in this primary's catalog.
    pub async fn catalog(&self, name: &str) -> Result<Catalog, IndexError> {
        let row = self
            .client
            .query_opt(STATE_SQL, &[&name])
            .await
            .map_err(self.fail("reading its catalog"))?;
        Ok(match row {
            None => Catalog::Missing,
            Some(r) if r.get::<_, bool>(0) => Catalog::Valid,
            Some(_) => Catalog::Invalid,
        })
    }

    /// Whether a worker (this gateway's or another's) works on `name` here now.
    pub async fn worked_on(&self, name: &str) -> Result<bool, IndexError> {
        let row = self
            .client
            .query_one(LOCK_HELD_SQL, &[&lock_key(name)])
            .await
            .map_err(self.fail("reading its locks"))?;
        Ok(row.get(0))
    }

    /// Takes `name`'s lock for this connection's life; false: another worker has it.
    pub async fn try_lock(&self, name: &str) -> Result<bool, IndexError> {
        let row = self
            .client
            .query_one(
                "SELECT pg_try_advisory_lock($1, $2)",
                &[&LOCK_SPACE, &lock_key(name)],
            )
            .await
            .map_err(self.fail("taking the index's lock"))?;
        Ok(row.get(0))
    }

    /// Builds `spec` (without a time bound), then refreshes the table's statistics so
    /// the planner knows the new expressions' values.
    pub async fn build(&self, spec: &IndexSpec) -> Result<(), WorkError> {
        self.client
            .batch_execute("SET statement_timeout = 0")
            .await?;
        self.client.batch_execute(&spec.create_sql()).await?;
        self.client.batch_execute("ANALYZE records").await?;
        Ok(())
    }

    /// Drops `name` if it is there.
    pub async fn drop_index(&self, name: &str) -> Result<(), WorkError> {
        self.client
            .batch_execute("SET statement_timeout = 0")
            .await?;
        self.client.batch_execute(&drop_sql(name)).await?;
        Ok(())
    }
}
