//! `shard-admin backups list`: the restore points recorded in the metadata database,
//! and pgBackRest's own account of every stanza's backups (`pgbackrest info`).

use serde::Serialize;

use shard_manager::config::ClusterSettings;

use super::error::BackupError;
use super::pgbackrest::Runner;
use super::point::RestorePoint;
use crate::map::{meta, MapError};

/// Everything `backups list` shows.
#[derive(Debug, Serialize)]
pub struct Listing {
    /// Recorded points, oldest first.
    pub points: Vec<Listed>,
    /// Per stanza, its backups.
    pub stanzas: Vec<StanzaBackups>,
}

/// A recorded point and the backup type taken with it.
#[derive(Debug, Serialize)]
pub struct Listed {
    #[serde(flatten)]
    pub point: RestorePoint,
    pub backup_type: String,
}

/// One stanza as pgBackRest reports it.
#[derive(Debug, Serialize)]
pub struct StanzaBackups {
    pub stanza: String,
    /// pgBackRest's status message ("ok", "missing stanza path", ...).
    pub status: String,
    pub backups: Vec<OneBackup>,
}

/// One pgBackRest backup.
#[derive(Debug, Serialize)]
pub struct OneBackup {
    pub label: String,
    pub kind: String,
    /// Unix seconds.
    pub started: i64,
    pub stopped: i64,
    /// The database's size, and what the repository stores for this backup.
    pub size_bytes: u64,
    pub repo_bytes: u64,
    pub wal_start: String,
    pub wal_stop: String,
}

pub async fn list(settings: &ClusterSettings) -> Result<Listing, BackupError> {
    let runner = Runner::new(&settings.backup)?;
    super::repo::usable(&runner, false).await?;
    let conn = meta::connect(settings).await?;
    let rows = conn
        .client
        .query(
            "SELECT name, (extract(epoch FROM created_at) * 1000000)::int8, map_version, backup_type, fence_ms, servers::text
               FROM restore_points ORDER BY created_at",
            &[],
        )
        .await;
    let rows = match rows {
        Ok(rows) => rows,
        // No table yet (42P01: undefined_table): no backup was ever taken.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => vec![],
        Err(e) => return Err(MapError::Query(e).into()),
    };
    let mut points = Vec::with_capacity(rows.len());
    for r in rows {
        let micros: i64 = r.get(1);
        let servers: String = r.get(5);
        points.push(Listed {
            point: RestorePoint {
                name: r.get(0),
                at: chrono::DateTime::from_timestamp_micros(micros).ok_or_else(|| {
                    MapError::Corrupt(format!("restore point time {micros} is out of range"))
                })?,
                map_version: r.get(2),
                fence_ms: r.get::<_, i64>(4) as u64,
                servers: serde_json::from_str(&servers)
                    .map_err(|e| MapError::Corrupt(format!("restore point servers: {e}")))?,
            },
            backup_type: r.get(3),
        });
    }
    let info = runner.info().await?;
    Ok(Listing {
        points,
        stanzas: stanzas(&info),
    })
}

/// pgBackRest's `info --output=json`, read for what the list shows.
fn stanzas(info: &serde_json::Value) -> Vec<StanzaBackups> {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
    info.as_array()
        .into_iter()
        .flatten()
        .map(|st| StanzaBackups {
            stanza: s(&st["name"]),
            status: s(&st["status"]["message"]),
            backups: st["backup"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| OneBackup {
                    label: s(&b["label"]),
                    kind: s(&b["type"]),
                    started: b["timestamp"]["start"].as_i64().unwrap_or(0),
                    stopped: b["timestamp"]["stop"].as_i64().unwrap_or(0),
                    size_bytes: b["info"]["size"].as_u64().unwrap_or(0),
                    repo_bytes: b["info"]["repository"]["delta"].as_u64().unwrap_or(0),
                    wal_start: s(&b["archive"]["start"]),
                    wal_stop: s(&b["archive"]["stop"]),
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgbackrest_info_is_read_for_its_backups() {
        let info = serde_json::json!([{
            "name": "shard0",
            "status": {"code": 0, "message": "ok"},
            "backup": [{
                "label": "20261125-170000F",
                "type": "full",
                "timestamp": {"start": 1700000000, "stop": 1700000003},
                "info": {"size": 31000000, "delta": 31000000,
                         "repository": {"size": 4000000, "delta": 4000000}},
                "archive": {"start": "000000010000000000000003", "stop": "000000010000000000000003"}
            }]
        }, {"name": "meta", "status": {"code": 1, "message": "missing stanza path"}, "backup": []}]);
        let got = stanzas(&info);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].stanza, "shard0");
        assert_eq!(got[0].backups[0].label, "20261125-170000F");
        assert_eq!(got[0].backups[0].size_bytes, 31_000_000);
        assert_eq!(got[0].backups[0].repo_bytes, 4_000_000);
        assert_eq!(got[0].backups[0].stopped - got[0].backups[0].started, 3);
        assert_eq!(got[1].status, "missing stanza path");
        assert!(got[1].backups.is_empty());
    }
}
