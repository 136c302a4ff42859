//! What the failure tests share beyond `helpers.rs`: one test at a time, outages of
//! real servers that always end (even when an assertion fails), row locks held from
//! outside the gateway, a gateway started from already-prepared settings, and keys
//! placed on a chosen shard.

use std::future::Future;
use std::sync::{mpsc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use api_router::settings::Settings;
use api_router::startup::Application;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, QueryResult, RunQueryDsl};
use reqwest::Response;
use serde_json::{json, Value};
use shard_manager::server::connection_url;
use shard_manager::{ClusterSettings, Router, ShardKey};
use tokio::sync::{Mutex, MutexGuard};

use crate::helpers::{self, setup_sh};

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
}

impl Outage {
    pub async fn begin(nodes: &[Node]) -> Self {
        let mut outage = Self {
            stopped: Vec::new(),
        };
        for &node in nodes {
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
        blocking(move || restart(&nodes).expect("restart after outage")).await;
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        if !self.stopped.is_empty() {
            // Must not panic: this may run while a failed assertion unwinds.
            if let Err(e) = restart(&self.stopped) {
                eprintln!("failure tests: could not restore {:?}: {e}", self.stopped);
            }
        }
    }
}

fn restart(nodes: &[Node]) -> Result<(), String> {
    let mut ordered = nodes.to_vec();
    ordered.sort_by_key(|n| matches!(n, Node::Replica(_)));
    for node in &ordered {
        let status = std::process::Command::new(setup_script())
            .args(["pg", "start", &node.name()])
            .current_dir(helpers::repo_root())
            .status()
            .map_err(|e| format!("setup.sh: {e}"))?;
        if !status.success() {
            return Err(format!(
                "setup.sh pg start {} failed: {status}",
                node.name()
            ));
        }
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

/// The script `helpers::setup_sh` runs.
fn setup_script() -> std::path::PathBuf {
    std::env::var("SHARDGATE_SETUP")
        .map(Into::into)
        .unwrap_or_else(|_| helpers::repo_root().join("setup.sh"))
}

/// The topology's servers, with the maintenance database.
fn topology() -> &'static ClusterSettings {
    static TOPOLOGY: OnceLock<ClusterSettings> = OnceLock::new();
    TOPOLOGY.get_or_init(|| {
        let mut cluster = helpers::test_settings().cluster;
        cluster.database.dbname = "postgres".into();
        cluster
    })
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// True when the shard's primary answers and shows its replica `streaming`.
fn streaming(shard: usize) -> bool {
    let cluster = topology();
    let url = connection_url(&cluster.database, &cluster.shards[shard].primary);
    let Ok(mut conn) = PgConnection::establish(&url) else {
        return false;
    };
    diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_replication \
         WHERE state = 'streaming' AND application_name = $1",
    )
    .bind::<Text, _>(Node::Replica(shard).name())
    .get_result::<Count>(&mut conn)
    .is_ok_and(|c| c.n > 0)
}

/// Runs blocking work (setup.sh, sync diesel) off the async runtime.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// Polls `attempt` every 50 ms until it yields a value; panics naming `what` after
/// `within`. Returns the value and how long it took.
pub async fn until<T, F, Fut>(within: Duration, what: &str, mut attempt: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = attempt().await {
            return (value, start.elapsed());
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `n` shard keys that route to `shard` under these settings.
pub fn keys_on(settings: &Settings, shard: usize, n: usize) -> Vec<String> {
    let ranges = settings.cluster.validate().expect("valid settings");
    let router = Router::new(&settings.cluster.routing, &ranges);
    (0..)
        .map(|i| format!("user-{i}"))
        .filter(|k| router.shard_for(&ShardKey::parse(k).unwrap()).index() == shard)
        .take(n)
        .collect()
}

/// A `users` record to write.
pub fn user(id: &str) -> Value {
    json!({"table": "users", "id": id, "data": {"name": format!("name of {id}")}})
}

/// A row of `records` locked `FOR UPDATE` by a transaction on a direct connection,
/// until [`RowLock::release`] or drop (which roll the transaction back).
pub struct RowLock {
    release: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RowLock {
    /// Returns once the lock is held; panics unless exactly the one row was locked.
    pub async fn hold(mut conn: PgConnection, key: &str, id: &str) -> Self {
        let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
        let (release, released) = mpsc::channel::<()>();
        let (key, id) = (key.to_owned(), id.to_owned());
        let thread = std::thread::spawn(move || {
            let locked = (|| -> QueryResult<usize> {
                conn.batch_execute("BEGIN")?;
                diesel::sql_query(
                    "SELECT 1 FROM records WHERE table_name = 'users' \
                     AND shard_key = $1 AND id = $2 FOR UPDATE",
                )
                .bind::<Text, _>(&key)
                .bind::<Text, _>(&id)
                .execute(&mut conn)
            })();
            let _ = locked_tx.send(locked);
            let _ = released.recv(); // Err once the sender is gone: release.
            let _ = conn.batch_execute("ROLLBACK");
        });
        let rows = locked_rx.await.expect("lock thread").expect("lock the row");
        assert_eq!(rows, 1, "exactly one row locked");
        Self {
            release: Some(release),
            thread: Some(thread),
        }
    }

    pub fn release(self) {}
}

impl Drop for RowLock {
    fn drop(&mut self) {
        self.release.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A gateway these tests started themselves: built here from settings whose databases
/// are already prepared (to start it while a replica is down), or a child process.
pub struct Gateway {
    pub address: String,
    pub client: reqwest::Client,
    /// Stops the in-process server on drop.
    handle: Option<actix_web::dev::ServerHandle>,
}

impl Gateway {
    pub fn start(settings: Settings) -> Self {
        let app = Application::build(settings).expect("build app");
        let handle = app.handle();
        let mut gateway = Self::at(app.port());
        gateway.handle = Some(handle);
        tokio::spawn(app.run_until_stopped());
        gateway
    }

    /// A gateway already listening on `port`.
    pub fn at(port: u16) -> Self {
        Self {
            address: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            handle: None,
        }
    }

    pub async fn write(&self, key: &str, id: &str) -> Response {
        self.client
            .post(format!("{}/api/write", self.address))
            .header("x-shard-key", key)
            .json(&user(id))
            .send()
            .await
            .expect("write")
    }

    pub async fn read(&self, key: &str, id: &str) -> Response {
        self.get(
            key,
            &format!("/api/read?table=users&id={}", helpers::enc(id)),
        )
        .await
    }

    pub async fn get(&self, key: &str, path_and_query: &str) -> Response {
        self.client
            .get(format!("{}{path_and_query}", self.address))
            .header("x-shard-key", key)
            .send()
            .await
            .expect("get")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(handle) = &self.handle {
            std::mem::drop(handle.stop(false));
        }
    }
}
