//! A restore's plan, gathered and checked before anything changes: which stanza goes
//! into which data directory, which replicas must be stopped, and every refusal
//! (pgbackrest or a stanza missing, an unknown point, a stanza with no backup taken
//! before the point, live gateways, a move or import active, a running replica whose
//! data directory cannot be learnt, an HA manager running: see [`super::ha`]). Reads
//! only.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use tokio_postgres::Client;

use shard_manager::config::ClusterSettings;
use shard_manager::live_map::ShardMap;
use shard_manager::routing::MapVersion;

use super::conf::{self, StanzaConf};
use super::ha;
pub use super::replica::ReplicaPlan;
use crate::backup::error::BackupError;
use crate::backup::pgbackrest::Runner;
use crate::backup::point::{self, describe};
use crate::backup::stanza::{self, Target};
use crate::map::{meta, MapError};

/// One server to restore.
#[derive(Debug, Clone)]
pub struct StanzaPlan {
    pub target: Target,
    /// Its data directory (`pg1-path`).
    pub data_dir: String,
    /// The pgBackRest backup to restore from (`--set`): the newest that ended before
    /// the point (pgBackRest would take the newest of all, which may be after it).
    pub set: String,
    /// Options for its postgres when the restore starts it (`pg_ctl -o`); under an HA
    /// manager, a formation's first node gets [`ha::postgres_options`].
    pub options: String,
}

/// Everything a restore will do, checked.
#[derive(Debug)]
pub struct Plan {
    pub point: String,
    /// When the point was taken: recorded, else read from its name.
    pub at: DateTime<Utc>,
    /// The map version recorded with the point, when the metadata database answered.
    pub map_version: Option<i64>,
    /// The point's `restore_points` row (JSON), written again after the restore: it
    /// was recorded after the point, so the restored metadata database lacks it.
    pub record: Option<String>,
    /// Shards' primaries by id, the metadata server last.
    pub stanzas: Vec<StanzaPlan>,
    pub replicas: Vec<ReplicaPlan>,
    /// What could not be checked, and why (the metadata database did not answer).
    pub notes: Vec<String>,
    /// The shards are run by an HA manager (stopped: the plan refuses otherwise); each
    /// is restored into its formation's first node, and `./setup.sh up` re-forms them.
    pub ha: bool,
    pub runner: Runner,
}

/// Checks everything a restore to `point` needs; changes nothing. A metadata database
/// that does not answer leaves the live-gateway and active-move checks undone: refused,
/// unless `force` (then the plan notes what was not checked).
pub async fn plan(
    settings: &ClusterSettings,
    point: &str,
    force: bool,
) -> Result<Plan, BackupError> {
    let refuse = |why: String| Err(BackupError::RestoreRefused(why));
    let ha_monitor = settings.failover.ha_monitor.as_deref();
    let runner = Runner::new(&settings.backup)?;
    crate::backup::repo::usable(&runner, false).await?;
    let text = std::fs::read_to_string(runner.config()).map_err(|_| BackupError::NoConfig {
        path: runner.config().display().to_string(),
    })?;
    let confs = conf::stanzas(&text);
    if let Some(monitor) = ha_monitor {
        let limit = settings.database.connect_timeout();
        let running = ha::running(monitor, &ha::node_paths(&confs), limit).await;
        if !running.is_empty() {
            return refuse(ha::refusal(&running, point));
        }
    }
    let mut notes = Vec::new();
    let (map, recorded) = match meta::connect(settings).await {
        Ok(mut conn) => {
            let recorded = checks(settings, &conn.client, point).await?;
            let map = meta::load(&mut conn.client).await?;
            (map, Some(recorded))
        }
        Err(e) if !force => {
            return refuse(format!(
                "{e}: without the metadata database, live gateways and active moves or imports cannot be checked, and the restored metadata database would not list the point; start it first (./setup.sh pg start meta), or pass --force to restore without these checks"
            ));
        }
        Err(e) => {
            notes.push(format!(
                "{e}: live gateways, active moves and the recorded point were not checked, and the restored metadata database will not list the point (start the metadata server first to keep both: ./setup.sh pg start meta)"
            ));
            (None, None)
        }
    };
    let map = match map {
        Some(map) => map,
        None => ShardMap::from_settings(settings, MapVersion(1))
            .map_err(|e| MapError::Invalid(e.to_string()))?,
    };
    let (at, map_version, record) = match recorded {
        Some(Some((at, version, record))) => (at, Some(version), Some(record)),
        Some(None) => {
            return refuse(format!(
                "unknown restore point {point:?}: the metadata database has no such point (`shard-admin backups list` shows them)"
            ))
        }
        None => match time_of(point) {
            Some(at) => (at, None, None),
            None => {
                return refuse(format!(
                    "unknown restore point {point:?}: the metadata database did not answer, and the name is not one `shard-admin backup` gives (sg_YYYYMMDDTHHMMSSZ)"
                ))
            }
        },
    };
    let mut targets = stanza::targets(&map, &settings.metadata.address);
    if ha_monitor.is_some() {
        targets = ha::first_nodes(targets, &confs);
    }
    let mut stanzas = placed(&targets, &confs).map_err(BackupError::RestoreRefused)?;
    for s in stanzas
        .iter_mut()
        .filter(|s| ha_monitor.is_some() && !s.target.holds_meta)
    {
        s.options = ha::postgres_options(confs[&s.target.stanza].port);
    }
    let info = runner.info().await?;
    for s in &mut stanzas {
        s.set = backed_up_before(&info, &s.target.stanza, at.timestamp()).map_err(|why| {
            BackupError::RestoreRefused(format!("{}: {why}", describe(&s.target)))
        })?;
    }
    let replicas = match ha_monitor {
        Some(_) => ha::other_nodes(&runner, &map, &confs).await,
        None => replicas(settings, &map).await?,
    };
    Ok(Plan {
        point: point.into(),
        at,
        map_version,
        record,
        stanzas,
        replicas,
        notes,
        ha: ha_monitor.is_some(),
        runner,
    })
}

/// The metadata database's refusals (live gateways, a move or import active), then the
/// recorded point: Some((time, map version, its row as JSON)), None when it has no such
/// point.
async fn checks(
    settings: &ClusterSettings,
    client: &Client,
    point: &str,
) -> Result<Option<(DateTime<Utc>, i64, String)>, BackupError> {
    let ttl = settings.metadata.gateway_ttl_ms as f64;
    let live = client
        .query(
            "SELECT address FROM gateways
              WHERE seen_at >= now() - make_interval(secs => $1::float8 / 1000) ORDER BY address",
            &[&ttl],
        )
        .await;
    let live: Vec<String> = match live {
        Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
        Err(e) if is_undefined_table(&e) => vec![],
        Err(e) => return Err(MapError::Query(e).into()),
    };
    if !live.is_empty() {
        return Err(BackupError::RestoreRefused(format!(
            "stop the gateways first: {} heard from within {} ms ({}); a gateway running across a restore would serve and cache data from after the point",
            live.len(),
            settings.metadata.gateway_ttl_ms,
            live.join(", ")
        )));
    }
    if let Some(busy) = crate::backup::take::busy(client).await? {
        return Err(BackupError::RestoreRefused(format!(
            "{busy} is active; finish or abort it first (`shard-admin moves abort` / `imports abort`)"
        )));
    }
    let row = client
        .query_opt(
            "SELECT (extract(epoch FROM created_at) * 1000000)::int8, map_version, row_to_json(p)::text
               FROM restore_points p WHERE name = $1",
            &[&point],
        )
        .await;
    match row {
        Ok(Some(r)) => {
            Ok(DateTime::from_timestamp_micros(r.get(0)).map(|at| (at, r.get(1), r.get(2))))
        }
        Ok(None) => Ok(None),
        Err(e) if is_undefined_table(&e) => Ok(None),
        Err(e) => Err(MapError::Query(e).into()),
    }
}

fn is_undefined_table(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
}

/// A point's time read from its name (`sg_YYYYMMDDTHHMMSSZ`, see `point::name_at`).
pub fn time_of(point: &str) -> Option<DateTime<Utc>> {
    let rest = point.strip_prefix("sg_")?;
    NaiveDateTime::parse_from_str(rest, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// Each target with its data directory, or why the configuration cannot restore it.
pub fn placed(
    targets: &[Target],
    confs: &BTreeMap<String, StanzaConf>,
) -> Result<Vec<StanzaPlan>, String> {
    targets
        .iter()
        .map(|t| {
            let conf = confs.get(&t.stanza).ok_or_else(|| {
                format!(
                    "{}: the stanza is missing from pgBackRest's configuration (./setup.sh up writes it)",
                    describe(t)
                )
            })?;
            let path = conf.path.clone().ok_or_else(|| {
                format!("{}: the stanza has no pg1-path in pgBackRest's configuration", describe(t))
            })?;
            let port = t.address.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
            if port != Some(conf.port) {
                return Err(format!(
                    "{}: pgBackRest's configuration places the stanza on port {}, the map on {}",
                    describe(t),
                    conf.port,
                    t.address
                ));
            }
            Ok(StanzaPlan {
                target: t.clone(),
                data_dir: path,
                set: String::new(),
                options: String::new(),
            })
        })
        .collect()
}

/// The label of the newest backup pgBackRest's `info` shows for the stanza that ended
/// at or before `at` (unix seconds), the stanza healthy: a restore to a point replays
/// WAL forward from such a backup, and cannot reach a point older than its backup.
pub fn backed_up_before(info: &serde_json::Value, stanza: &str, at: i64) -> Result<String, String> {
    let st = info
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == stanza)
        .ok_or("pgBackRest's repository does not know the stanza")?;
    if st["status"]["code"].as_i64() != Some(0) {
        let message = st["status"]["message"].as_str().unwrap_or("unknown status");
        return Err(format!("the stanza's repository is not usable ({message})"));
    }
    let backups: Vec<(i64, &str)> = st["backup"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| Some((b["timestamp"]["stop"].as_i64()?, b["label"].as_str()?)))
        .collect();
    let newest = backups
        .iter()
        .filter(|(stop, _)| *stop <= at)
        .max_by_key(|(stop, _)| *stop);
    match newest {
        Some((_, label)) => Ok(label.to_string()),
        None => Err(format!(
            "no backup ended before the point ({} backup(s), none before {})",
            backups.len(),
            DateTime::from_timestamp(at, 0).map_or(at.to_string(), |t| t.to_rfc3339())
        )),
    }
}

/// The replicas of every active shard (the map's and the configuration's), each with
/// its data directory when it runs. One that answers on its port but will not say
/// where its data is refuses the restore: it could not be stopped.
async fn replicas(
    settings: &ClusterSettings,
    map: &ShardMap,
) -> Result<Vec<ReplicaPlan>, BackupError> {
    let mut out: Vec<ReplicaPlan> = Vec::new();
    for shard in map.shards.iter().filter(|s| !s.retired) {
        let configured = settings.shards.get(shard.id.index()).map(|s| &s.replicas);
        for address in shard
            .replicas
            .iter()
            .chain(configured.into_iter().flatten())
        {
            if out.iter().any(|r| &r.address == address) {
                continue;
            }
            let data_dir = data_directory(settings, address).await.map_err(|why| {
                BackupError::RestoreRefused(format!(
                    "replica {address} of {} runs, but {why}; it must be stopped (it holds data from after the point)",
                    shard.id
                ))
            })?;
            out.push(ReplicaPlan {
                shard: shard.id.to_string(),
                address: address.clone(),
                data_dir,
            });
        }
    }
    Ok(out)
}

/// A server's data directory (`SHOW data_directory`: a superuser or a member of
/// `pg_read_all_settings` may read it); None when nothing listens on its port.
async fn data_directory(
    settings: &ClusterSettings,
    address: &str,
) -> Result<Option<String>, String> {
    let limit = settings.database.connect_timeout() + Duration::from_millis(500);
    match tokio::time::timeout(limit, tokio::net::TcpStream::connect(address)).await {
        Ok(Ok(_)) => {}
        _ => return Ok(None),
    }
    let target = Target {
        stanza: "-".into(),
        address: address.into(),
        holds_meta: false,
    };
    let conn = point::connect_all(settings, &[target])
        .await
        .map_err(|e| format!("could not be signed in to ({e})"))?;
    let client = &conn.0[0].1;
    let row = client
        .query_one("SHOW data_directory", &[])
        .await
        .map_err(|e| match e.code() {
            Some(c) if *c == tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE => format!(
                "role {} may not read its data_directory: GRANT pg_read_all_settings TO {} on its primary (./setup.sh up does)",
                settings.database.user, settings.database.user
            ),
            _ => format!("SHOW data_directory failed: {e}"),
        })?;
    Ok(Some(row.get(0)))
}

#[cfg(test)]
mod tests {
    //! The plan's pure parts.

    use super::*;
    use chrono::TimeZone;

    fn target(stanza: &str, address: &str) -> Target {
        Target {
            stanza: stanza.into(),
            address: address.into(),
            holds_meta: false,
        }
    }

    #[test]
    fn a_point_name_gives_its_time() {
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 17, 4, 33).unwrap();
        assert_eq!(time_of(&point::name_at(at)), Some(at));
        assert_eq!(time_of("sg_yesterday"), None);
        assert_eq!(time_of("nightly"), None);
    }

    #[test]
    fn every_stanza_needs_a_data_directory_on_its_port() {
        let confs =
            conf::stanzas("[shard0]\npg1-path=/d/0\npg1-port=25432\n[meta]\npg1-port=25430\n");
        let ok = placed(&[target("shard0", "127.0.0.1:25432")], &confs).unwrap();
        assert_eq!(ok[0].data_dir, "/d/0");
        let err = placed(&[target("shard1", "127.0.0.1:25433")], &confs).unwrap_err();
        assert!(
            err.contains("stanza shard1 (127.0.0.1:25433): the stanza is missing"),
            "{err}"
        );
        let err = placed(&[target("meta", "127.0.0.1:25430")], &confs).unwrap_err();
        assert!(err.contains("no pg1-path"), "{err}");
        let err = placed(&[target("shard0", "127.0.0.1:25433")], &confs).unwrap_err();
        assert!(
            err.contains("port 25432, the map on 127.0.0.1:25433"),
            "{err}"
        );
    }

    #[test]
    fn a_point_needs_a_backup_that_ended_before_it() {
        let info = serde_json::json!([
            {"name": "shard0", "status": {"code": 0, "message": "ok"},
             "backup": [{"label": "A", "timestamp": {"start": 90, "stop": 100}},
                        {"label": "B", "timestamp": {"start": 190, "stop": 200}}]},
            {"name": "meta", "status": {"code": 1, "message": "missing stanza path"}, "backup": []}
        ]);
        assert_eq!(backed_up_before(&info, "shard0", 100).as_deref(), Ok("A"));
        assert_eq!(backed_up_before(&info, "shard0", 150).as_deref(), Ok("A"));
        assert_eq!(backed_up_before(&info, "shard0", 250).as_deref(), Ok("B"));
        let err = backed_up_before(&info, "shard0", 99).unwrap_err();
        assert!(
            err.contains("no backup ended before the point (2 backup(s)"),
            "{err}"
        );
        let err = backed_up_before(&info, "meta", 500).unwrap_err();
        assert!(err.contains("missing stanza path"), "{err}");
        let err = backed_up_before(&info, "shard9", 500).unwrap_err();
        assert!(err.contains("does not know the stanza"), "{err}");
    }
}
