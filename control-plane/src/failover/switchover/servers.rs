//! What a switchover asks of the shard's own servers: where the primary's WAL is, how
//! far a standby has replayed, and the drain: the old primary told to answer new
//! transactions read-only (`default_transaction_read_only`, through `ALTER SYSTEM`
//! and a reload, which setup.sh grants the administrator's role, `failover.admin_user`,
//! never a gateway's: every connection here signs in as it), so every new write
//! fails with SQLSTATE 25006 before it writes anything and waits for the new primary,
//! while the writes already in flight finish.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::SwitchoverError;
use crate::postgres::connect as connect_postgres;
use shard_manager::config::ClusterSettings;
use shard_manager::routing::ShardId;
use shard_manager::servers::connection_url;

/// One connection to one server of the shard, its errors naming both.
pub struct ServerConn {
    pub shard: ShardId,
    pub server: String,
    client: Client,
}

impl ServerConn {
    pub async fn open(
        settings: &ClusterSettings,
        shard: ShardId,
        server: &str,
    ) -> Result<Self, SwitchoverError> {
        let db = settings.failover.as_admin(&settings.database);
        let url = connection_url(&db, server);
        let limit = db.connect_timeout() + Duration::from_millis(500);
        let fail = |reason: String| SwitchoverError::Server {
            shard,
            server: server.to_owned(),
            doing: "did not answer",
            reason,
        };
        let (client, connection) = tokio::time::timeout(limit, connect_postgres(&url, &db))
            .await
            .map_err(|_| fail(format!("no answer within {} ms", limit.as_millis())))?
            .map_err(fail)?;
        tokio::spawn(connection);
        Ok(Self {
            shard,
            server: server.to_owned(),
            client,
        })
    }

    fn fail(&self, doing: &'static str) -> impl Fn(tokio_postgres::Error) -> SwitchoverError + '_ {
        move |e| SwitchoverError::Server {
            shard: self.shard,
            server: self.server.clone(),
            doing,
            reason: e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_owned()),
        }
    }

    /// Whether the server is in recovery.
    pub async fn in_recovery(&self) -> Result<bool, SwitchoverError> {
        let row = self
            .client
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .map_err(self.fail("could not say its role"))?;
        Ok(row.get(0))
    }

    /// A primary's current WAL position (text, as `pg_lsn` prints it).
    pub async fn current_lsn(&self) -> Result<String, SwitchoverError> {
        let row = self
            .client
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .await
            .map_err(self.fail("could not say its WAL position"))?;
        Ok(row.get(0))
    }

    /// How many bytes of WAL up to `lsn` a standby has still to replay (0 once it has
    /// replayed it all); None when the server is not in recovery.
    pub async fn behind(&self, lsn: &str) -> Result<Option<u64>, SwitchoverError> {
        let row = self
            .client
            .query_one(
                "SELECT pg_is_in_recovery(),
                        GREATEST(pg_wal_lsn_diff($1::text::pg_lsn, pg_last_wal_replay_lsn()), 0)::bigint",
                &[&lsn],
            )
            .await
            .map_err(self.fail("could not say how far it has replayed"))?;
        let in_recovery: bool = row.get(0);
        let behind: Option<i64> = row.get(1);
        Ok(in_recovery.then(|| behind.unwrap_or(i64::MAX) as u64))
    }

    /// New transactions read-only (`on`), or back to the server's default: written
    /// ([`set_read_only`](Self::set_read_only)) and reloaded.
    pub async fn read_only(&self, on: bool) -> Result<(), SwitchoverError> {
        self.set_read_only(on).await?;
        self.reload().await
    }

    /// Whether this role may drain the server: `ALTER SYSTEM` of
    /// `default_transaction_read_only` and `pg_reload_conf()`; the role's name.
    pub async fn may_drain(&self) -> Result<(bool, String), SwitchoverError> {
        let row = self
            .client
            .query_one(
                "SELECT has_parameter_privilege('default_transaction_read_only', 'ALTER SYSTEM')
                        AND has_function_privilege('pg_reload_conf()', 'EXECUTE'), current_user::text",
                &[],
            )
            .await
            .map_err(self.fail("could not say what this role may do"))?;
        Ok((row.get(0), row.get(1)))
    }

    /// Writes the drain (`on`) or its removal to `postgresql.auto.conf`, not yet reloaded.
    pub async fn set_read_only(&self, on: bool) -> Result<(), SwitchoverError> {
        let statement = match on {
            true => "ALTER SYSTEM SET default_transaction_read_only = on",
            false => "ALTER SYSTEM RESET default_transaction_read_only",
        };
        self.client
            .batch_execute(statement)
            .await
            .map_err(self.fail(
                "may not be set read-only by this role (the switchover signs in as failover.admin_user, to whom setup.sh grants ALTER SYSTEM ON PARAMETER default_transaction_read_only and EXECUTE ON FUNCTION pg_reload_conf(); a gateway's role may not)",
            ))
    }

    /// `pg_reload_conf()`: every session takes the written settings.
    pub async fn reload(&self) -> Result<(), SwitchoverError> {
        self.client
            .batch_execute("SELECT pg_reload_conf()")
            .await
            .map_err(self.fail("could not reload its configuration"))
    }

    /// Whether a new transaction here is read-only by default (a drain, set and
    /// reloaded; this session's view, so open a new one to see a reload).
    pub async fn drained(&self) -> Result<bool, SwitchoverError> {
        let row = self
            .client
            .query_one(
                "SELECT current_setting('default_transaction_read_only') = 'on'",
                &[],
            )
            .await
            .map_err(self.fail("could not say whether it is read-only"))?;
        Ok(row.get(0))
    }

    /// Waits, at most `limit`, until every transaction that began before the drain
    /// (`since`, this server's clock once every session has taken the reload) is over:
    /// whether it got there. A write whose transaction began before then may still
    /// write; one that began after is read-only and fails before it writes anything.
    pub async fn earlier_transactions_gone(
        &self,
        since: &str,
        limit: Duration,
    ) -> Result<bool, SwitchoverError> {
        let until = Instant::now() + limit;
        loop {
            let row = self
                .client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                      WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
                        AND xact_start < $1::text::timestamptz",
                    &[&since],
                )
                .await
                .map_err(self.fail("could not list its sessions"))?;
            if row.get::<_, i64>(0) == 0 {
                return Ok(true);
            }
            if Instant::now() >= until {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// This server's clock, as text.
    pub async fn clock(&self) -> Result<String, SwitchoverError> {
        let row = self
            .client
            .query_one("SELECT clock_timestamp()::text", &[])
            .await
            .map_err(self.fail("could not say its time"))?;
        Ok(row.get(0))
    }

    /// Whether the server takes writes: out of recovery, and its new transactions not
    /// read-only by default (a promoted node its HA manager still holds read-only does
    /// not).
    pub async fn takes_writes(&self) -> Result<bool, SwitchoverError> {
        let row = self
            .client
            .query_one(
                "SELECT NOT pg_is_in_recovery() AND current_setting('default_transaction_read_only') = 'off'",
                &[],
            )
            .await
            .map_err(self.fail("could not say its role"))?;
        Ok(row.get(0))
    }
}
