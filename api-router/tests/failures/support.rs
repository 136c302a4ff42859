//! Small things the failure tests share beyond test-support: keys placed on a chosen
//! shard, row locks held from outside the gateway and the queries they hold up, a
//! gateway started from already-prepared settings, a replica's replay paused.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use api_router::server::settings::Settings;
use api_router::startup::Application;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::sql_types::Text;
use diesel::{Connection, QueryResult, RunQueryDsl};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use shard_manager::ShardKey;
use test_app::TestApp;
use test_support::{setup_script, setup_sh};

pub use test_support::wait::{blocking, until};

/// A randomized test's seed: `SG_SEED` when set (to replay a run), else a new one,
/// printed under `test` so a failing run can be replayed.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("SG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("{test} seed: SG_SEED={seed}");
    seed
}

/// Waits until an eventual read of record `key` (id = key) is served by a replica:
/// a replica takes reads once the gateway's checks have measured its lag.
pub async fn until_replica_serves(app: &TestApp, key: &str) {
    let what = format!("a replica serves {key}");
    until(Duration::from_secs(10), &what, || async {
        let res = app.read(key, "users", key).await;
        if res.status() != StatusCode::OK {
            return None;
        }
        let body: Value = res.json().await.unwrap();
        (body["source"] == "replica").then_some(())
    })
    .await;
}

/// `n` shard keys that route to `shard` under these settings.
pub fn keys_on(settings: &Settings, shard: usize, n: usize) -> Vec<String> {
    let router = settings.cluster.validate().expect("valid settings");
    (0..)
        .map(|i| format!("user-{i}"))
        .filter(|k| {
            let key = ShardKey::parse(k).unwrap();
            router.route(key).unwrap().shard().index() == shard
        })
        .take(n)
        .collect()
}

pub use test_app::metric_sum;

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

/// Waits until exactly `n` gateway queries on database `dbname` wait for a lock, as
/// the primary at `url` shows them in `pg_stat_activity`.
pub async fn until_waiting_on_locks(url: &str, dbname: &str, n: i64) {
    #[derive(diesel::QueryableByName)]
    struct Waiting {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let what = format!("{n} gateway queries waiting on a lock");
    until(Duration::from_secs(5), &what, || {
        let (url, dbname) = (url.to_owned(), dbname.to_owned());
        async move {
            let waiting = blocking(move || {
                let mut conn = PgConnection::establish(&url).expect("connect");
                diesel::sql_query(
                    "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 \
                     AND application_name = 'shardgate' AND wait_event_type = 'Lock'",
                )
                .bind::<diesel::sql_types::Text, _>(dbname)
                .get_result::<Waiting>(&mut conn)
                .expect("pg_stat_activity")
                .n
            })
            .await;
            (waiting == n).then_some(())
        }
    })
    .await;
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
    pub async fn start(settings: Settings) -> Self {
        let app = Application::build(settings).await.expect("build app");
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
            &format!(
                "/api/read?table=users&id={}",
                shard_manager::servers::encode(id)
            ),
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

/// Pauses WAL replay on a replica; resumes it however the test ends. Pausing replay
/// takes a superuser, which the gateway's role is not: it goes through `setup.sh pg psql`,
/// which holds the superuser's credentials.
pub struct ReplayPaused {
    server: String,
}

impl ReplayPaused {
    pub fn begin(server: String) -> Self {
        setup_sh(&["pg", "psql", &server, "-c", "SELECT pg_wal_replay_pause()"]);
        Self { server }
    }
}

impl Drop for ReplayPaused {
    fn drop(&mut self) {
        let _ = std::process::Command::new(setup_script())
            .args([
                "pg",
                "psql",
                &self.server,
                "-c",
                "SELECT pg_wal_replay_resume()",
            ])
            .status();
    }
}
