//! Real outages of the shared topology, one test at a time: servers stopped with
//! `pg_ctl stop -m immediate` (through `setup.sh`) are always started again, and the
//! next test only begins once every server is up and every replica streams.
//!
//! Under the HA manager (`./setup.sh up`'s default topology: every shard a
//! pg_auto_failover formation) a stop is the node's loss (keeper and PostgreSQL killed
//! -9), and a primary lost for more than 2 s would be failed over. These tests prove
//! what the gateway does while a server is away and after it is back, so a primary's
//! outage first holds its shard's failover (`./setup.sh ha hold N`: no secondary may
//! be promoted, as when none qualifies) and releases it once the primary is back and
//! its formation settled. Failovers themselves are proven in control-plane's
//! `failover` tests.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::dsl::sql;
use diesel::pg::PgConnection;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel::{Connection, RunQueryDsl};
use shard_manager::servers::connection_url;
use shard_manager::ClusterSettings;
use tokio::sync::{Mutex, MutexGuard};

use crate::repo::{repo_root, setup_script, setup_sh, superuser_password};
use crate::wait::blocking;

/// These tests stop servers every test shares: they must never overlap.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// Takes the process-wide test lock, then makes sure every server is up and every
/// replica streams (a run killed mid-outage may have left one stopped).
pub async fn serial() -> MutexGuard<'static, ()> {
    let guard = SERIAL.lock().await;
    blocking(|| {
        for shard in 0..topology().shards.len() {
            if !streaming(shard) {
                restart(&[Node::Primary(shard), Node::Replica(shard)]).expect("restore topology");
            }
        }
    })
    .await;
    guard
}

/// A server of the local topology, named as `setup.sh` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    Primary(usize),
    /// The shard's first (and, locally, only) replica.
    Replica(usize),
}

impl Node {
    pub fn name(self) -> String {
        match self {
            Self::Primary(s) => format!("shard{s}-primary"),
            Self::Replica(s) => format!("shard{s}-replica0"),
        }
    }

    fn shard(self) -> usize {
        match self {
            Self::Primary(s) | Self::Replica(s) => s,
        }
    }
}

/// Servers stopped with `pg_ctl stop -m immediate`. [`Outage::end`] restarts them and
/// waits until their shards stream again; dropping the outage (a failed assertion)
/// does the same, so the next test always finds the whole topology up.
#[must_use = "an outage restarts its servers when it ends or drops"]
pub struct Outage {
    stopped: Vec<Node>,
    /// Shards whose failover this outage holds (under the HA manager).
    held: Vec<usize>,
}

impl Outage {
    pub async fn begin(nodes: &[Node]) -> Self {
        let mut outage = Self {
            stopped: Vec::new(),
            held: Vec::new(),
        };
        for &node in nodes {
            blocking(move || checkpoint(node)).await;
            if let (Node::Primary(shard), true) = (node, under_ha_manager()) {
                // Recorded first: a hold whose stop fails is still released.
                outage.held.push(shard);
                blocking(move || setup_sh(&["ha", "hold", &shard.to_string()])).await;
            }
            // Recorded first: a stop that fails half-way is still restarted.
            outage.stopped.push(node);
            blocking(move || setup_sh(&["pg", "stop", &node.name()])).await;
        }
        outage
    }

    /// Starts every stopped server (primaries first), waits until each accepts
    /// connections and its shard's replica streams.
    pub async fn end(mut self) {
        let nodes = std::mem::take(&mut self.stopped);
        let held = std::mem::take(&mut self.held);
        let start = Instant::now();
        let names: Vec<String> = nodes.iter().map(|n| n.name()).collect();
        blocking(move || {
            restart(&nodes).expect("restart after outage");
            release(&held).expect("release the failover hold after the outage");
        })
        .await;
        eprintln!("{names:?} up and streaming after {:?}", start.elapsed());
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        // Must not panic: this may run while a failed assertion unwinds.
        if !self.stopped.is_empty() {
            if let Err(e) = restart(&self.stopped) {
                eprintln!("failure tests: could not restore {:?}: {e}", self.stopped);
            }
        }
        if let Err(e) = release(&self.held) {
            eprintln!("failure tests: {e}");
        }
    }
}

fn restart(nodes: &[Node]) -> Result<(), String> {
    let mut ordered = nodes.to_vec();
    ordered.sort_by_key(|n| matches!(n, Node::Replica(_)));
    for node in &ordered {
        setup(&["pg", "start", &node.name()])?;
    }
    let mut shards: Vec<usize> = nodes.iter().map(|n| n.shard()).collect();
    shards.sort_unstable();
    shards.dedup();
    let deadline = Instant::now() + Duration::from_secs(30);
    for shard in shards {
        while !streaming(shard) {
            if Instant::now() > deadline {
                return Err(format!("shard{shard}-replica0 does not stream after 30 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

/// `./setup.sh ha release N` for each held shard: waits until its formation has
/// settled (primary back, secondaries streaming), then allows failover again.
fn release(shards: &[usize]) -> Result<(), String> {
    for shard in shards {
        setup(&["ha", "release", &shard.to_string()])?;
    }
    Ok(())
}

/// `setup.sh ARGS`, its failure as an error (never a panic: this runs in `Drop`).
fn setup(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new(setup_script())
        .args(args)
        .current_dir(repo_root())
        .output()
        .map_err(|e| format!("setup.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "setup.sh {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Whether an HA manager runs the shards (`failover.ha_monitor` is set, as
/// `./setup.sh env` sets it for a cluster made under pg_auto_failover).
fn under_ha_manager() -> bool {
    static HA: OnceLock<bool> = OnceLock::new();
    *HA.get_or_init(|| topology().failover.ha_monitor.is_some())
}

/// The topology's servers, with the maintenance database.
fn topology() -> &'static ClusterSettings {
    static TOPOLOGY: OnceLock<ClusterSettings> = OnceLock::new();
    TOPOLOGY.get_or_init(|| {
        let default = repo_root().join("config/default.toml");
        let mut cluster: ClusterSettings =
            shard_manager::config::load(Some(&default)).expect("the topology's settings");
        cluster.database.dbname = "postgres".into();
        // Managing outages is an operator's work (replication state, checkpoints), which
        // the gateway's role may not do: log in as the superuser setup.sh made.
        if let Some(password) = superuser_password() {
            cluster.database.user = "postgres".into();
            cluster.database.password = password.into();
        }
        cluster
    })
}

/// Makes the crash recovery after an immediate stop short: a checkpoint on the
/// primary and, for a replica, a restartpoint once it has replayed that checkpoint.
/// Without it a replica replays all WAL since its last restartpoint (up to minutes).
/// Only an optimisation: a failure is reported, not fatal.
fn checkpoint(node: Node) {
    if let Err(e) = try_checkpoint(node) {
        eprintln!(
            "failure tests: no checkpoint before stopping {}: {e}",
            node.name()
        );
    }
}

fn try_checkpoint(node: Node) -> Result<(), String> {
    let cluster = topology();
    let shard = &cluster.shards[node.shard()];
    let connect = |addr: &str| -> Result<PgConnection, String> {
        let mut conn = PgConnection::establish(&connection_url(&cluster.database, addr))
            .map_err(|e| format!("connect {addr}: {e}"))?;
        // A checkpoint on a busy machine can take longer than the configured timeout.
        conn.batch_execute("SET statement_timeout = 0")
            .map_err(|e| e.to_string())?;
        Ok(conn)
    };
    let mut primary = connect(&shard.primary)?;
    primary
        .batch_execute("CHECKPOINT")
        .map_err(|e| format!("checkpoint: {e}"))?;
    if let Node::Replica(_) = node {
        let lsn: String = diesel::select(sql::<Text>("pg_current_wal_lsn()::text"))
            .get_result(&mut primary)
            .map_err(|e| e.to_string())?;
        let mut replica = connect(&shard.replicas[0])?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let replayed = sql::<Bool>("coalesce(pg_last_wal_replay_lsn() >= ")
            .bind::<Text, _>(lsn)
            .sql("::pg_lsn, false)");
        while !diesel::select(replayed.clone())
            .get_result::<bool>(&mut replica)
            .map_err(|e| e.to_string())?
        {
            if Instant::now() > deadline {
                return Err("the replica did not replay the checkpoint within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        replica
            .batch_execute("CHECKPOINT")
            .map_err(|e| format!("restartpoint: {e}"))?;
    }
    Ok(())
}

/// Drops the test's metadata database (the shards' go with [`DropDatabase`]).
#[must_use = "the database is dropped when this is"]
pub struct DropMetadata(pub ClusterSettings);

impl Drop for DropMetadata {
    fn drop(&mut self) {
        let mut db = self.0.database.clone();
        let name = std::mem::replace(&mut db.dbname, "postgres".into());
        if let Ok(mut conn) =
            diesel::PgConnection::establish(&connection_url(&db, &self.0.metadata.address))
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn);
        }
    }
}

/// Drops a test database on every primary when dropped (replicas follow), so the
/// data directories, which every crash recovery fsyncs in full, do not keep growing.
#[must_use = "the database is dropped when this is"]
pub struct DropDatabase(pub String);

impl Drop for DropDatabase {
    fn drop(&mut self) {
        let cluster = topology();
        for shard in &cluster.shards {
            let url = connection_url(&cluster.database, &shard.primary);
            let dropped = PgConnection::establish(&url)
                .map_err(|e| e.to_string())
                .and_then(|mut conn| {
                    conn.batch_execute(&format!(
                        "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                        self.0
                    ))
                    .map_err(|e| e.to_string())
                });
            if let Err(e) = dropped {
                eprintln!(
                    "failure tests: could not drop {} on {}: {e}",
                    self.0, shard.primary
                );
            }
        }
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// True when the shard's primary answers and shows its replica `streaming` (under the
/// HA manager a secondary streams as `pgautofailover_standby_<node id>`; a shard has
/// one, so any streaming standby is it).
fn streaming(shard: usize) -> bool {
    let cluster = topology();
    let url = connection_url(&cluster.database, &cluster.shards[shard].primary);
    let Ok(mut conn) = PgConnection::establish(&url) else {
        return false;
    };
    diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_replication \
         WHERE state = 'streaming' \
           AND (application_name = $1 OR application_name LIKE 'pgautofailover\\_standby\\_%')",
    )
    .bind::<Text, _>(Node::Replica(shard).name())
    .get_result::<Count>(&mut conn)
    .is_ok_and(|c| c.n > 0)
}
