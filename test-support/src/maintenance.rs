//! Statements on a server's maintenance database (`postgres`), as the gateway's role or
//! as the superuser `setup.sh` made: creating and dropping scratch databases. And the
//! runtime a drop guard's clean-up runs on.

use shard_manager::config::DatabaseSettings;
use shard_manager::servers::connection_url;
use shard_manager::ClusterSettings;
use tokio_postgres::Client;

use crate::repo::superuser_password;

/// Connects to `dbname` on `server` with `[database]`'s credentials.
pub async fn connect_to(settings: &ClusterSettings, server: &str, dbname: &str) -> Client {
    let mut db = settings.database.clone();
    db.dbname = dbname.to_owned();
    let (client, connection) = control_plane::postgres::connect(&connection_url(&db, server), &db)
        .await
        .unwrap_or_else(|e| panic!("connect to {dbname} on {server}: {e}"));
    tokio::spawn(connection);
    client
}

/// Runs `sql` on `addr`'s maintenance database.
pub async fn maintenance(settings: &ClusterSettings, addr: &str, sql: &str) {
    let mut db = settings.database.clone();
    db.dbname = "postgres".into();
    run_maintenance(db, addr, sql).await
}

/// [`maintenance`] as the superuser `setup.sh` made (its password from the repository's
/// `.local/credentials.env`), when there is one: a `DROP DATABASE … WITH (FORCE)` then
/// ends every session of the scratch database, whatever role holds it, where the
/// gateway's role may end only its own. As the gateway's role otherwise.
pub async fn maintenance_as_superuser(settings: &ClusterSettings, addr: &str, sql: &str) {
    let mut db = settings.database.clone();
    db.dbname = "postgres".into();
    if let Some(password) = superuser_password() {
        db.user = "postgres".into();
        db.password = password.into();
    }
    run_maintenance(db, addr, sql).await
}

async fn run_maintenance(db: DatabaseSettings, addr: &str, sql: &str) {
    let url = connection_url(&db, addr);
    let (client, conn) = control_plane::postgres::connect(&url, &db)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    tokio::spawn(conn);
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql} on {addr}: {e:?}"));
}

/// Runs `work` to its end on a thread and runtime of its own: a drop guard's clean-up,
/// which may run while the test's runtime unwinds. A panic in it is not passed on.
pub fn on_own_runtime(work: impl std::future::Future<Output = ()> + Send + 'static) {
    let _ = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(work)
    })
    .join();
}
