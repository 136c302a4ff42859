//! A real gateway in the test's own process, on port 0 against fresh, uniquely named
//! databases on the real primaries (replicas follow by streaming replication), with
//! migrations applied; and the typed requests and assertions the tests make of it.

use std::time::{Duration, Instant};

use api_router::server::settings::Settings;
use api_router::startup::Application;
use control_plane::map::meta;
use control_plane::moves::plan::Which;
use control_plane::moves::{mover, Move, Moves, Phase};
use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use shard_manager::servers::connection_url;
use shard_manager::servers::encode;
use shard_manager::{Cluster, ClusterSettings, Router, ShardId, ShardKey};

use test_support::repo::repo_root;
use test_support::scratch::{create_databases, drop_databases};

/// A running gateway and what a test needs to talk to it and to its shards.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub settings: Settings,
    /// The gateway's cluster: tests arm its fault points and read its state.
    pub cluster: std::sync::Arc<Cluster>,
    pub handle: actix_web::dev::ServerHandle,
    /// Whether dropping it drops the test's databases: the gateway that made them does,
    /// one [`TestApp::beside`] it does not.
    owns_databases: bool,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop accepting, then drop this test's databases (FORCE ends the pool's
        // connections): leftovers would make every crash restart of a server slower.
        std::mem::drop(self.handle.stop(false));
        if !self.owns_databases {
            return;
        }
        drop_databases(
            &self.settings.cluster,
            &self.settings.cluster.database.dbname,
        );
    }
}

/// Settings for a fresh test database, built from the repo's default configuration.
pub fn test_settings() -> Settings {
    let path = repo_root().join("config/default.toml");
    let text = std::fs::read_to_string(&path).expect("config/default.toml");
    let mut settings: Settings = config_from_str(&text);
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.workers = 2;
    settings.server.shutdown_timeout_secs = 2;
    settings.cluster.database.dbname = format!("sgtest_{}", uuid::Uuid::new_v4().simple());
    settings.cluster.database.pool_max_size = 4;
    settings
}

fn config_from_str(text: &str) -> Settings {
    let dir = std::env::temp_dir().join(format!("sg-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("settings.toml");
    std::fs::write(&file, text).unwrap();
    // Layer the repo file over the built-in defaults exactly as the binary does.
    let settings = Settings::load(Some(&file)).expect("settings load");
    let _ = std::fs::remove_dir_all(&dir);
    settings
}

/// Creates the test database on every primary and on the metadata server (the same
/// name on each), migrates the shards, seeds the map (`init`: the shards are told
/// their slots), and waits until every replica has replayed it.
pub async fn prepare_database(settings: &mut Settings) {
    settings.cluster.metadata.dbname = settings.cluster.database.dbname.clone();
    let cluster = settings.cluster.clone();
    let name = cluster.database.dbname.clone();
    let for_init = cluster.clone();
    tokio::task::spawn_blocking(move || {
        create_databases(&cluster, &name);
        shard_admin::migrate_all(&cluster).expect("migrate");
        let deadline = Instant::now() + Duration::from_secs(20);
        for shard in &cluster.shards {
            for replica in &shard.replicas {
                let url = connection_url(&cluster.database, replica);
                loop {
                    let ready = PgConnection::establish(&url).ok().is_some_and(|mut c| {
                        diesel::sql_query("SELECT 1 FROM records LIMIT 1")
                            .execute(&mut c)
                            .is_ok()
                    });
                    if ready {
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "replica {replica} never replayed the test database"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    })
    .await
    .expect("prepare database");
    control_plane::map::change::init(&for_init)
        .await
        .expect("init: seed the map, tell the shards");
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns a gateway after letting the test adjust its settings.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings();
    adjust(&mut settings);
    prepare_database(&mut settings).await;
    let app = Application::build(settings.clone())
        .await
        .expect("build app");
    let port = app.port();
    let handle = app.handle();
    let cluster = app.cluster();
    tokio::spawn(app.run_until_stopped());
    wait_until_steady(&cluster).await;
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        // Idle connections are dropped before the gateway's 5 s keep-alive closes them:
        // reusing one the server is closing at that moment fails the request
        // (IncompleteMessage), a race of the client's pool, not of the gateway.
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .unwrap(),
        settings,
        cluster,
        handle,
        owns_databases: true,
    }
}

/// Until the health monitor's first check has measured every replica's lag (a few ms
/// after start, longer on a busy machine), eventual reads go to primaries; and until
/// the gateway is listed among the gateways and has read each shard's cache epoch
/// since, its cache is bypassed. Tests start from the steady state, every replica
/// taking reads and the cache in use; asked of the cluster directly so that no request
/// reaches the analytics.
async fn wait_until_steady(cluster: &Cluster) {
    let limits = &cluster.settings().replication;
    // Within a second when the machine is idle; a replica that missed its connect
    // timeout under load (the suites on servers of their own starting beside these)
    // is banned for a few seconds each time, so the bound is generous (a fresh-clone
    // run saw every replica banned for 30 s at once).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut waiting: Vec<String> = cluster
            .shards()
            .iter()
            .flat_map(|s| s.replicas.iter())
            .filter_map(|r| {
                r.qualification(limits)
                    .err()
                    .map(|why| format!("{}: {why:?}", r.addr))
            })
            .collect();
        if let Some(cache) = cluster.cache() {
            waiting.extend(
                cluster
                    .shards()
                    .iter()
                    .filter(|s| cache.epoch(s.id).is_none())
                    .map(|s| format!("{}: no cache epoch yet", s.id)),
            );
        }
        if waiting.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replicas never took reads, or the cache never knew its epochs: {waiting:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The sum of a metric's samples in the `/metrics` of the gateway at `base` whose line
/// starts with `name` and contains `with` (every label set when `with` is empty); 0
/// when there is none.
pub async fn metric_sum(client: &reqwest::Client, base: &str, name: &str, with: &str) -> f64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("the metrics' text");
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(with))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Sends `req` and parses its answer as JSON, whatever the status.
pub async fn json_of(req: reqwest::RequestBuilder) -> Value {
    req.send()
        .await
        .expect("the request is answered")
        .json()
        .await
        .expect("a JSON answer")
}

impl TestApp {
    /// A second gateway on this one's settings (the same databases, cache and prefix),
    /// running in this process, sharing its HTTP client, returned once it is steady as
    /// [`spawn_app`]'s are. Dropping it stops it and leaves the databases to this one.
    pub async fn beside(&self) -> TestApp {
        let app = Application::build(self.settings.clone())
            .await
            .expect("second gateway");
        let other = TestApp {
            address: format!("http://127.0.0.1:{}", app.port()),
            port: app.port(),
            client: self.client.clone(),
            settings: self.settings.clone(),
            cluster: app.cluster(),
            handle: app.handle(),
            owns_databases: false,
        };
        tokio::spawn(app.run_until_stopped());
        wait_until_steady(&other.cluster).await;
        other
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A POST of `body` as JSON to `path`, with `x-shard-key: key` when there is one;
    /// not yet sent, so tables of cases can hold it.
    pub fn post_json_request(&self, path: &str, key: Option<&str>, body: &Value) -> RequestBuilder {
        let mut req = self.client.post(self.url(path));
        if let Some(k) = key {
            req = req.header("x-shard-key", k);
        }
        req.json(body)
    }

    /// Sends [`TestApp::post_json_request`].
    pub async fn post_json(&self, path: &str, key: Option<&str>, body: &Value) -> Response {
        self.post_json_request(path, key, body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    pub async fn write(&self, key: &str, body: &Value) -> Response {
        self.post_json("/api/write", Some(key), body).await
    }

    pub async fn read(&self, key: &str, table: &str, id: &str) -> Response {
        self.get(key, &format!("/api/read?table={table}&id={}", encode(id)))
            .await
    }

    pub async fn read_strong(&self, key: &str, table: &str, id: &str) -> Response {
        self.get(
            key,
            &format!(
                "/api/read?table={table}&id={}&consistency=strong",
                encode(id)
            ),
        )
        .await
    }

    /// The sum of a metric's samples in this gateway's `/metrics` ([`metric_sum`]).
    pub async fn metric(&self, name: &str, with: &str) -> f64 {
        metric_sum(&self.client, &self.address, name, with).await
    }

    /// GET without a shard key, decoded as JSON.
    pub async fn get_json(&self, path_and_query: &str) -> Value {
        self.client
            .get(self.url(path_and_query))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("JSON body")
    }

    pub async fn get(&self, key: &str, path_and_query: &str) -> Response {
        self.client
            .get(self.url(path_and_query))
            .header("x-shard-key", key)
            .send()
            .await
            .expect("get")
    }

    pub async fn bulk(&self, key: Option<&str>, body: &Value) -> Response {
        self.post_json("/api/bulk-write", key, body).await
    }

    pub async fn delete(&self, key: &str, table: &str, id: &str) -> Response {
        self.client
            .delete(self.url(&format!("/api/delete?table={table}&id={}", encode(id))))
            .header("x-shard-key", key)
            .send()
            .await
            .expect("delete")
    }

    /// Reads until a replica serves the record at `version` or newer (replica
    /// visibility lags a few milliseconds); panics after 5 s.
    pub async fn read_replica_until(
        &self,
        key: &str,
        table: &str,
        id: &str,
        version: i64,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let res = self.read(key, table, id).await;
            if res.status() == StatusCode::OK {
                let body: Value = res.json().await.unwrap();
                // Until the monitor's first check has measured the replica's lag (a few
                // ms after start), eventual reads go to the primary.
                if body["record"]["version"].as_i64() >= Some(version)
                    && body["source"] == "replica"
                {
                    return body;
                }
            }
            assert!(
                Instant::now() < deadline,
                "replica never showed {table}/{id} v{version}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn router(&self) -> Router {
        self.settings.cluster.validate().unwrap()
    }

    pub fn shard_of(&self, key: &str) -> ShardId {
        let key = ShardKey::parse(key).unwrap();
        self.router().route(key).unwrap().shard()
    }

    /// A direct connection to a server of the test database, bypassing the gateway.
    pub fn connect(&self, server: &str) -> PgConnection {
        PgConnection::establish(&connection_url(&self.settings.cluster.database, server))
            .expect("direct connection")
    }

    pub fn primary(&self, shard: usize) -> String {
        self.settings.cluster.shards[shard].primary.clone()
    }

    pub fn replica(&self, shard: usize) -> String {
        self.settings.cluster.shards[shard].replicas[0].clone()
    }

    /// Records a move of `slots` slots from shard 0 to shard 1 (phase `capturing`, no
    /// mover runs it) and progress as a mover records it: `rows` to copy, `copied` of
    /// them copied (with the first slot), 30 changes replayed and `behind` not yet.
    pub async fn record_move(&self, slots: u32, rows: i64, copied: i64, behind: i64) -> Move {
        let settings = &self.settings.cluster;
        let request = mover::Request {
            kind: "move-slots".into(),
            from: 0,
            to: 1,
            which: Which::Count(slots),
        };
        let mv = mover::start(settings, &request)
            .await
            .expect("start a move");
        let meta = meta::connect(settings).await.expect("metadata connection");
        let moves = Moves::new(&meta.client);
        moves.set_total(mv.id, rows).await.unwrap();
        moves
            .copied_slots(mv.id, &mv.detail.slots[..1], copied)
            .await
            .unwrap();
        moves.replayed(mv.id, 30, behind).await.unwrap();
        mv
    }
}

/// Moves `count` slots from shard `from` to `to` as `shard-admin move-slots` does, to
/// the end, in this process; panics unless the move is done.
pub async fn move_slots(settings: &ClusterSettings, from: u32, to: u32, count: u32) -> Move {
    let request = mover::Request {
        kind: "move-slots".into(),
        from,
        to,
        which: Which::Count(count),
    };
    let mv = mover::start(settings, &request)
        .await
        .expect("start a move");
    let mut progress = |_: &Move| {};
    let done = mover::run(settings, mv.id, &mut progress)
        .await
        .expect("run the move");
    assert_eq!(done.phase, Phase::Done, "{}", done.note);
    done
}

/// Asserts a problem+json answer and returns its body.
pub async fn assert_problem(res: Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status, "unexpected status");
    let ctype = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(ctype, "application/problem+json");
    let request_id = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = res.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], json!(status));
    assert!(body["title"].is_string() && body["detail"].is_string());
    assert_eq!(body["request_id"].as_str(), request_id.as_deref());
    body
}
