//! `shard-admin restore --point NAME`: every server of the cluster (each active
//! shard's primary and the metadata server) restored with pgBackRest to one cluster
//! restore point, so the cluster is again exactly as it was at the point, map included.
//!
//! In order: [`plan`] checks everything and changes nothing (the command without
//! `--yes` stops there and prints it); then the replicas are stopped (they hold data
//! from after the point, and cannot follow a primary restored onto a new timeline);
//! every primary is stopped (fast) before any is restored, so that a failure part-way
//! never leaves servers of different times serving together; then all at once, each is
//! restored (`pgbackrest restore --delta --type=name --target-action=promote`), started,
//! awaited until it has left recovery, and rid of the recovery settings pgBackRest
//! wrote ([`recovery_settings`]); the point's own `restore_points` row (written
//! after the point, so not in the restored metadata database) is written again as soon
//! as the metadata server is back; then [`in_doubt`] finishes the prepared parts of
//! transactions on several shards that the point caught (from the restored coordinator
//! log), and [`settle`] moves every shard's cache epoch past anything cached after the
//! point and checks the map against the shards.
//!
//! A primary made by `setup.sh` carries an incarnation file that its replicas copy;
//! the restore gives it a new one, so `./setup.sh up` clones each stopped replica again
//! from its restored primary (it does so for a replica of an older incarnation).
//!
//! Under an HA manager ([`ha`]), which must be stopped first, each shard is restored
//! into its formation's first node, the other nodes stay stopped, and once the servers
//! are back the map is made to name each first node as its shard's primary (a promotion
//! recorded as `migrate` would: `failover::reconcile`) where it named another node;
//! with their new incarnations, `./setup.sh up` re-forms every formation around them.
//!
//! ## Layout
//! - [`conf`]: each stanza's data directory and port, from pgBackRest's configuration.
//! - [`plan`]: the plan and every refusal.
//! - [`ha`]: under an HA manager: its refusal, the first nodes, the other nodes.
//! - [`replica`]: a server the restore stops and never starts with its old data.
//! - [`server`]: pg_ctl stop / start and the wait for promotion.
//! - [`recovery_settings`]: pgBackRest's recovery settings taken out once a server is promoted.
//! - [`in_doubt`]: prepared parts at the point, committed or rolled back by the log.
//! - [`settle`]: cache epochs raised and retired; the map checked.

pub mod conf;
pub mod ha;
pub mod in_doubt;
pub mod plan;
pub mod recovery_settings;
pub mod replica;
pub mod server;
pub mod settle;

use std::path::Path;
use std::time::{Duration, Instant};

use shard_manager::config::ClusterSettings;

use super::error::BackupError;
use super::point::describe;
use crate::map::{meta, MapError};
pub use in_doubt::InDoubt;
pub use plan::{plan, Plan, StanzaPlan};
pub use replica::ReplicaPlan;
pub use settle::RestoredShard;

/// setup.sh's incarnation file in a primary's data directory (its replicas copy it).
pub const INCARNATION_FILE: &str = "shardgate.incarnation";

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    /// Per stanza: pgBackRest's restore time, then the time from `pg_ctl start` until
    /// it has replayed to the point and been promoted.
    pub stanzas: Vec<(StanzaPlan, Duration, Duration)>,
    /// Replicas stopped (the others were not running).
    pub stopped_replicas: Vec<ReplicaPlan>,
    /// Whether a primary was given a new incarnation (setup.sh will clone its replicas).
    pub new_incarnation: bool,
    /// Under an HA manager: the shards whose map named another node than the restored
    /// first node as primary, now following it (one line each).
    pub followed: Vec<String>,
    /// The restored metadata map's version.
    pub map_version: u64,
    /// Prepared parts found at the point and how they were finished.
    pub in_doubt: InDoubt,
    /// Each active shard as the restore left it.
    pub shards: Vec<RestoredShard>,
    pub took: Duration,
}

/// Carries out a checked plan; `progress` hears each step as it starts.
pub async fn restore(
    settings: &ClusterSettings,
    plan: &Plan,
    progress: impl Fn(&str),
) -> Result<Restored, BackupError> {
    let started = Instant::now();
    let runner = &plan.runner;
    let mut stopped_replicas = Vec::new();
    for r in &plan.replicas {
        let Some(dir) = &r.data_dir else { continue };
        let name = format!("replica {} of {}", r.address, r.shard);
        progress(&format!("stopping {name} ({dir})"));
        if server::stop(runner, &name, dir).await? {
            stopped_replicas.push(r.clone());
        }
    }
    for s in &plan.stanzas {
        progress(&format!(
            "stopping {} ({})",
            describe(&s.target),
            s.data_dir
        ));
        server::stop(runner, &describe(&s.target), &s.data_dir).await?;
    }
    // Every server at once: most of the time is each one's replay of archived WAL.
    let progress = &progress;
    let back = plan
        .stanzas
        .iter()
        .map(|s| bring_back(settings, plan, s, progress));
    let mut stanzas = Vec::with_capacity(plan.stanzas.len());
    let mut new_incarnation = false;
    for done in futures_util::future::join_all(back).await {
        let (s, restore, promoted, incarnated) = done?;
        new_incarnation |= incarnated;
        stanzas.push((s, restore, promoted));
    }
    let mut followed = Vec::new();
    if plan.ha {
        progress("the map: each shard's primary is its formation's restored first node");
        followed = crate::failover::reconcile::once(settings)
            .await?
            .iter()
            .map(ToString::to_string)
            .collect();
    }
    let mut conn = meta::connect(settings).await?;
    let map = meta::load(&mut conn.client)
        .await?
        .ok_or(MapError::NotInitialised)?;
    progress("finishing transactions prepared at the point, by the restored coordinator log");
    let in_doubt = in_doubt::resolve(settings, &map).await?;
    progress("raising every shard's cache epoch; checking the map");
    let shards = settle::settle(settings, &conn.client, &map).await?;
    Ok(Restored {
        stanzas,
        stopped_replicas,
        new_incarnation,
        followed,
        map_version: map.version.0,
        in_doubt,
        shards,
        took: started.elapsed(),
    })
}

/// One stopped server restored, started and awaited until promoted at the point: the
/// pgBackRest time, the time from its start until promoted, whether it was given a new
/// incarnation.
async fn bring_back(
    settings: &ClusterSettings,
    plan: &Plan,
    s: &StanzaPlan,
    progress: &impl Fn(&str),
) -> Result<(StanzaPlan, Duration, Duration, bool), BackupError> {
    let runner = &plan.runner;
    let name = describe(&s.target);
    progress(&format!("pgbackrest restore of {name} to {}", plan.point));
    let began = Instant::now();
    server::ensure_dir(runner, &name, &s.data_dir).await?;
    runner.restore(&s.target, &s.set, &plan.point).await?;
    let incarnated = reincarnate(&s.data_dir, &name)?;
    let restore = began.elapsed();
    progress(&format!(
        "starting {name}; waiting until it reaches the point and leaves recovery"
    ));
    let starting = Instant::now();
    server::start(runner, &name, &s.data_dir, &s.options).await?;
    server::promoted(settings, &s.target).await?;
    recovery_settings::remove(&s.data_dir, &name)?;
    if let (true, Some(record)) = (s.target.holds_meta, &plan.record) {
        // At once, so that running the command again after another server failed
        // still finds the point recorded.
        rerecord(settings, record).await?;
    }
    Ok((s.clone(), restore, starting.elapsed(), incarnated))
}

/// Writes the point's `restore_points` row back into the restored metadata database.
async fn rerecord(settings: &ClusterSettings, record: &str) -> Result<(), BackupError> {
    let conn = meta::connect(settings).await?;
    conn.client
        .execute(
            "INSERT INTO restore_points
             SELECT * FROM json_populate_record(NULL::restore_points, $1::text::json)
             ON CONFLICT (name) DO NOTHING",
            &[&record],
        )
        .await
        .map_err(MapError::Query)?;
    Ok(())
}

/// Gives a setup.sh primary a new incarnation (its replicas, copies of the old one, are
/// then cloned again by `./setup.sh up`); false when the directory has no such file.
fn reincarnate(data: &str, server: &str) -> Result<bool, BackupError> {
    let file = Path::new(data).join(INCARNATION_FILE);
    if !file.is_file() {
        return Ok(false);
    }
    std::fs::write(&file, format!("{}\n", uuid::Uuid::new_v4())).map_err(|e| {
        BackupError::RestoreStep {
            server: server.into(),
            step: format!("writing its new incarnation ({})", file.display()),
            reason: e.to_string(),
        }
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_setup_sh_primary_is_given_a_new_incarnation() {
        let dir = std::env::temp_dir().join(format!("sg-reincarnate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.to_str().unwrap();
        assert!(
            !reincarnate(data, "s").unwrap(),
            "no file, nothing to renew"
        );
        assert!(!dir.join(INCARNATION_FILE).exists());
        std::fs::write(dir.join(INCARNATION_FILE), "old\n").unwrap();
        assert!(reincarnate(data, "s").unwrap());
        let new = std::fs::read_to_string(dir.join(INCARNATION_FILE)).unwrap();
        assert_ne!(new, "old\n");
        assert!(uuid::Uuid::parse_str(new.trim()).is_ok(), "{new:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
