//! Access control against the real metadata database. Keys are made, revoked and
//! rotated with shard-manager's own functions in the test gateway's own metadata
//! database (every test app has one), so a key made here binds no other test's gateway.

mod headers;
mod matrix;
mod protected;
mod revocation;

use std::time::{Duration, Instant};

use control_plane::keys::{store, KeyName, NewKey, Scopes};
use control_plane::map::meta;
use test_app::TestApp;

async fn metadata(app: &TestApp) -> meta::MetaConn {
    meta::connect(&app.settings.cluster)
        .await
        .expect("the test's metadata database")
}

/// Stores a key the way `shard-admin keys create` does; returns its secret.
pub async fn create_key(
    app: &TestApp,
    name: &str,
    scopes: &str,
    tables: Option<&[&str]>,
) -> String {
    let key = NewKey {
        name: KeyName::parse(name).unwrap(),
        scopes: Scopes::parse(scopes).unwrap(),
        tables: tables.map(|t| t.iter().map(|s| s.to_string()).collect()),
        limits: Default::default(),
    };
    let secret = store::create(&mut metadata(app).await.client, &key, "test")
        .await
        .expect("create key");
    secret.expose().to_owned()
}

pub async fn revoke_key(app: &TestApp, name: &str) {
    store::revoke(
        &mut metadata(app).await.client,
        &KeyName::parse(name).unwrap(),
        "test",
    )
    .await
    .expect("revoke key");
}

pub async fn rotate_key(app: &TestApp, name: &str) -> String {
    let (_, secret) = store::rotate(
        &mut metadata(app).await.client,
        &KeyName::parse(name).unwrap(),
        "test",
    )
    .await
    .expect("rotate key");
    secret.expose().to_owned()
}

/// GET `path` with `Authorization: Bearer key` (no header with `None`); the status.
pub async fn status_with(app: &TestApp, path: &str, key: Option<&str>) -> u16 {
    status_at(&app.client, &app.url(path), key).await
}

/// The same against any gateway's `url`.
pub async fn status_at(client: &reqwest::Client, url: &str, key: Option<&str>) -> u16 {
    let mut req = client.get(url);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.expect("send").status().as_u16()
}

/// Waits (5 s at most) until the gateway knows `key`: a keyless request is refused
/// (so it holds keys, not the empty table that lets loopback clients in) and one with
/// `key` is not.
pub async fn await_key(app: &TestApp, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while status_with(app, "/metrics", None).await != 401
        || status_with(app, "/metrics", Some(key)).await == 401
    {
        assert!(
            Instant::now() < deadline,
            "the gateway never took the new key"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
