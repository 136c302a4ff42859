//! The HA manager's side: pg_auto_failover's monitor, asked over SQL (its documented
//! functions), never imitated. Each shard N is its formation `shardN`, group 0.

use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use super::SwitchoverError;
use shard_manager::redact::redact;
use shard_manager::routing::ShardId;

/// The formation that runs `shard`.
pub fn formation(shard: ShardId) -> String {
    format!("shard{}", shard.0)
}

/// A node as the monitor sees it.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    /// The state the node last reported (`primary`, `secondary`, `catchingup`, ...).
    pub state: String,
    /// Whether the monitor's health check reaches it.
    pub healthy: bool,
}

pub struct Monitor {
    shown: String,
    client: Client,
}

impl Monitor {
    /// Connects to the monitor (a loopback link: the monitor is asked no secret).
    pub async fn connect(url: &str) -> Result<Self, SwitchoverError> {
        let shown = redact(url);
        let fail = |reason: String| SwitchoverError::Monitor {
            monitor: shown.clone(),
            doing: "did not answer",
            reason,
        };
        let (client, connection) =
            tokio::time::timeout(Duration::from_secs(5), tokio_postgres::connect(url, NoTls))
                .await
                .map_err(|_| fail("no answer within 5 s".into()))?
                .map_err(|e| fail(e.to_string()))?;
        tokio::spawn(connection);
        Ok(Self { shown, client })
    }

    fn fail(&self, doing: &'static str) -> impl Fn(tokio_postgres::Error) -> SwitchoverError + '_ {
        move |e| SwitchoverError::Monitor {
            monitor: self.shown.clone(),
            doing,
            reason: e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_owned()),
        }
    }

    /// The node of `shard`'s formation at `server` (`host:port`), if the monitor has one.
    pub async fn node(
        &self,
        shard: ShardId,
        server: &str,
    ) -> Result<Option<Node>, SwitchoverError> {
        let (host, port) = server.rsplit_once(':').unwrap_or((server, "5432"));
        let port: i32 = port.parse().unwrap_or(5432);
        let row = self
            .client
            .query_opt(
                "SELECT nodename, reportedstate::text, health = 1
                   FROM pgautofailover.node
                  WHERE formationid = $1 AND groupid = 0 AND nodehost = $2 AND nodeport = $3",
                &[&formation(shard), &host, &port],
            )
            .await
            .map_err(self.fail("could not list the formation's nodes"))?;
        Ok(row.map(|r| Node {
            name: r.get(0),
            state: r.get(1),
            healthy: r.get(2),
        }))
    }

    /// Asks the monitor to promote `node` of `shard`'s formation: it drains the
    /// primary, promotes the node once it has caught up, and brings the old primary
    /// back as a standby.
    pub async fn promote(&self, shard: ShardId, node: &str) -> Result<(), SwitchoverError> {
        let row = self
            .client
            .query_one(
                "SELECT pgautofailover.perform_promotion($1, $2)",
                &[&formation(shard), &node],
            )
            .await
            .map_err(self.fail("refused the promotion"))?;
        match row.get::<_, bool>(0) {
            true => Ok(()),
            false => Err(SwitchoverError::Monitor {
                monitor: self.shown.clone(),
                doing: "refused the promotion",
                reason: format!("{node} is already the primary of {}", formation(shard)),
            }),
        }
    }
}
