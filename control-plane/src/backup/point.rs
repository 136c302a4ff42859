//! A cluster restore point: with the metadata database's fence lock held exclusive
//! (every decision write of a transaction on several shards takes it shared, see
//! [`DECISION_FENCE_LOCK`]), `pg_create_restore_point(name)` on every shard primary and
//! then on the metadata server, and the lock released. The fence stops only decision
//! writes, for as long as the points take (measured: `fence_ms`). Then each server's
//! WAL is switched and the point's segment awaited in the archive, so a restore can
//! reach it.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Client;

use shard_manager::config::ClusterSettings;
use shard_manager::servers::connection_url;

use super::error::BackupError;
use super::stanza::Target;
use crate::postgres::connect as connect_postgres;
use crate::txn::log::DECISION_FENCE_LOCK;

/// A point named on every server, as recorded in `restore_points`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RestorePoint {
    pub name: String,
    pub at: DateTime<Utc>,
    /// The map version the metadata database held at the point.
    pub map_version: i64,
    /// How long decision writes were held back.
    pub fence_ms: u64,
    pub servers: Vec<PointAt>,
}

/// The point on one server.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PointAt {
    pub stanza: String,
    pub address: String,
    /// `pg_create_restore_point`'s answer.
    pub lsn: String,
    /// The WAL segment that holds it.
    pub wal_file: String,
}

/// An open connection to each server, in point order (the metadata server last).
pub struct Connected(pub Vec<(Target, Client)>);

/// Connects to every server first, so that a server down stops the backup before
/// anything is done, naming it.
pub async fn connect_all(
    settings: &ClusterSettings,
    targets: &[Target],
) -> Result<Connected, BackupError> {
    let mut out = Vec::with_capacity(targets.len());
    for target in targets {
        out.push((target.clone(), connect_one(settings, target).await?));
    }
    Ok(Connected(out))
}

/// A connection to one server (its database, or the metadata database on the metadata
/// server), bounded by the connect timeout; the error names the server.
pub async fn connect_one(
    settings: &ClusterSettings,
    target: &Target,
) -> Result<Client, BackupError> {
    let mut db = settings.database.clone();
    if target.holds_meta {
        db.dbname = settings.metadata.dbname.clone();
    }
    let url = connection_url(&db, &target.address);
    let limit = settings.database.connect_timeout() + Duration::from_millis(500);
    let (client, connection) = tokio::time::timeout(limit, connect_postgres(&url, &db))
        .await
        .map_err(|_| {
            BackupError::server(
                describe(target),
                format!("no answer within {} ms", limit.as_millis()),
            )
        })?
        .map_err(|e| BackupError::server(describe(target), e))?;
    tokio::spawn(connection);
    Ok(client)
}

/// "stanza shard0 (127.0.0.1:25432)": how errors name a server.
pub fn describe(target: &Target) -> String {
    format!("stanza {} ({})", target.stanza, target.address)
}

impl Connected {
    /// The metadata server's target and connection (the last one; `stanza::targets`
    /// always ends with it).
    fn meta(&self) -> Result<(&Target, &Client), BackupError> {
        match self.0.last() {
            Some((target, client)) if target.holds_meta => Ok((target, client)),
            _ => Err(BackupError::Refused(
                "the metadata server is not among the servers to back up".into(),
            )),
        }
    }

    /// Takes the fence, names the point everywhere, releases the fence.
    pub async fn create(&self, name: &str) -> Result<RestorePoint, BackupError> {
        let (meta_target, meta) = self.meta()?;
        let fail = |doing: &str, e| BackupError::query(describe(meta_target), doing, e);
        meta.execute("SELECT pg_advisory_lock($1)", &[&DECISION_FENCE_LOCK])
            .await
            .map_err(|e| fail("taking the fence", e))?;
        let started = Instant::now();
        let named = self.name_everywhere(name).await;
        let fence = started.elapsed();
        let released = meta
            .execute("SELECT pg_advisory_unlock($1)", &[&DECISION_FENCE_LOCK])
            .await
            .map_err(|e| fail("lifting the fence", e));
        let (map_version, servers) = named?;
        released?;
        tracing::info!(
            point = name,
            fence_ms = fence.as_millis() as u64,
            "restore point named"
        );
        Ok(RestorePoint {
            name: name.into(),
            at: Utc::now(),
            map_version,
            fence_ms: fence.as_millis() as u64,
            servers,
        })
    }

    async fn name_everywhere(&self, name: &str) -> Result<(i64, Vec<PointAt>), BackupError> {
        let (meta_target, meta) = self.meta()?;
        let map_version: i64 = meta
            .query_one("SELECT version FROM map_state", &[])
            .await
            .map_err(|e| BackupError::query(describe(meta_target), "reading the map version", e))?
            .get(0);
        let mut servers = Vec::with_capacity(self.0.len());
        for (target, client) in &self.0 {
            let row = client
                .query_one(
                    "SELECT p::text, pg_walfile_name(p) FROM pg_create_restore_point($1) AS p",
                    &[&name],
                )
                .await
                .map_err(|e| BackupError::query(describe(target), "pg_create_restore_point", e))?;
            servers.push(PointAt {
                stanza: target.stanza.clone(),
                address: target.address.clone(),
                lsn: row.get(0),
                wal_file: row.get(1),
            });
        }
        Ok((map_version, servers))
    }

    /// Switches every server's WAL and waits until the segment holding its point is
    /// archived (a restore reads it from the archive).
    pub async fn archived(&self, point: &RestorePoint, wait: Duration) -> Result<(), BackupError> {
        let started = Instant::now();
        for ((target, client), at) in self.0.iter().zip(&point.servers) {
            let fail = |e: tokio_postgres::Error| BackupError::server(describe(target), e);
            client
                .execute("SELECT pg_switch_wal()", &[])
                .await
                .map_err(fail)?;
            loop {
                let row = client
                    .query_one(
                        "SELECT coalesce(last_archived_wal, ''), coalesce(last_failed_wal, ''), \
                                coalesce(last_failed_time::text, '') FROM pg_stat_archiver",
                        &[],
                    )
                    .await
                    .map_err(fail)?;
                let archived: String = row.get(0);
                if archived.len() == at.wal_file.len() && archived >= at.wal_file {
                    break;
                }
                if started.elapsed() > wait {
                    let failed: String = row.get(1);
                    let when: String = row.get(2);
                    return Err(BackupError::NotArchived {
                        server: describe(target),
                        point: point.name.clone(),
                        waited_ms: wait.as_millis(),
                        detail: format!(
                            "last archived {archived:?}, last failed {failed:?} at {when:?}"
                        ),
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }
}

/// A point's name: `sg_` and the time, to the second, UTC.
pub fn name_at(at: DateTime<Utc>) -> String {
    format!("sg_{}", at.format("%Y%m%dT%H%M%SZ"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_point_is_named_by_its_time() {
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 17, 4, 33).unwrap();
        assert_eq!(name_at(at), "sg_20261125T170433Z");
    }
}
