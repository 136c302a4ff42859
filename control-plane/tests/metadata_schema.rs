//! The metadata database's migrations (`map::schema`) on the metadata server
//! `./setup.sh up` starts, each test in a scratch database of its own (dropped at the
//! end): `cargo test -p control-plane --test metadata_schema`, with the environment of
//! `eval "$(./setup.sh env)"`.
//!
//! - a database the numbered steps set up (the runner before the migrations) is
//!   adopted: its steps are recorded under their migrations' versions and only the
//!   newer migrations run;
//! - what `schema::apply` applies is what diesel's own harness reads: nothing pending,
//!   every `down.sql` reverts, and the migrations apply again after.

use control_plane::map::meta;
use control_plane::map::schema::{self, LEGACY_STEPS, MIGRATIONS};
use diesel::pg::PgConnection;
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use shard_manager::servers::connection_url;
use shard_manager::ClusterSettings;
use test_support::scratch::MetaScratch;
use tokio_postgres::Client;

/// The same folder, as diesel embeds it (as `shard-admin` embeds the shards').
const DIESEL_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../metadata-migrations");

/// Settings whose metadata database is a new, empty scratch one; and a connection to it.
async fn scratch() -> (ClusterSettings, MetaScratch, Client) {
    let guard = MetaScratch::empty("sgtest_schema").await;
    let settings = guard.0.clone();
    let conn = meta::connect(&settings).await.expect("the metadata server");
    (settings, guard, conn.client)
}

/// What the step runner before the migrations left after applying its first `steps`:
/// the same SQL, and each step recorded by number in its own table.
async fn set_up_by_steps(client: &Client, steps: usize) {
    client
        .batch_execute(
            "CREATE TABLE shardgate_meta_schema (
                 step       INTEGER     PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await
        .expect("the steps' table");
    for (i, migration) in MIGRATIONS[..steps].iter().enumerate() {
        client
            .batch_execute(migration.up)
            .await
            .expect(migration.name);
        client
            .execute(
                "INSERT INTO shardgate_meta_schema (step) VALUES ($1)",
                &[&(i as i32 + 1)],
            )
            .await
            .expect("the step recorded");
    }
}

/// The versions diesel's table records, in order.
async fn recorded(client: &Client) -> Vec<String> {
    client
        .query(
            "SELECT version FROM __diesel_schema_migrations ORDER BY version",
            &[],
        )
        .await
        .expect("diesel's table")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

async fn table_exists(client: &Client, name: &str) -> bool {
    client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .await
        .expect("to_regclass")
        .get(0)
}

/// Runs `work` on a diesel connection to the scratch metadata database, on a blocking
/// thread (diesel's connection is synchronous).
async fn with_diesel<T, F>(settings: &ClusterSettings, work: F) -> T
where
    T: Send + 'static,
    F: FnOnce(&mut PgConnection) -> T + Send + 'static,
{
    let mut db = settings.database.clone();
    db.dbname = settings.metadata.dbname.clone();
    let url = connection_url(&db, &settings.metadata.address);
    tokio::task::spawn_blocking(move || {
        let mut conn = PgConnection::establish(&url).expect("diesel connects");
        work(&mut conn)
    })
    .await
    .expect("the diesel thread")
}

/// Versions of the migrations diesel would still run.
async fn diesel_pending(settings: &ClusterSettings) -> Vec<String> {
    with_diesel(settings, |conn| {
        conn.pending_migrations(DIESEL_MIGRATIONS)
            .expect("diesel reads the applied migrations")
            .iter()
            .map(|m| m.name().version().to_string())
            .collect()
    })
    .await
}

#[tokio::test]
async fn a_database_the_steps_set_up_is_adopted_and_only_newer_migrations_run() {
    let (settings, _scratch, mut client) = scratch().await;
    // Set up by the steps as they stood two releases before the last one.
    let old = LEGACY_STEPS - 2;
    set_up_by_steps(&client, old).await;
    assert!(!table_exists(&client, "cluster_secrets").await);

    let applied = schema::apply(&mut client).await.expect("the migrations");

    assert_eq!(
        applied,
        MIGRATIONS.len() - old,
        "only the newer migrations ran"
    );
    let every: Vec<&str> = MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(recorded(&client).await, every);
    assert!(
        table_exists(&client, "cluster_secrets").await,
        "the last step ran"
    );
    let seq: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns
                             WHERE table_name = 'map_history' AND column_name = 'seq')",
            &[],
        )
        .await
        .expect("the columns")
        .get(0);
    assert!(seq, "the step before it ran");
    assert!(
        table_exists(&client, "shardgate_meta_schema").await,
        "the steps' table is kept for binaries of the earlier release"
    );
    assert_eq!(schema::apply(&mut client).await.expect("again"), 0);
    assert_eq!(diesel_pending(&settings).await, Vec::<String>::new());
}

#[tokio::test]
async fn diesel_reads_and_reverts_what_apply_applied() {
    let (settings, _scratch, mut client) = scratch().await;

    assert_eq!(
        schema::apply(&mut client).await.expect("the migrations"),
        MIGRATIONS.len()
    );
    assert_eq!(diesel_pending(&settings).await, Vec::<String>::new());

    // Every down.sql, newest first, by diesel's harness.
    let reverted = with_diesel(&settings, |conn| {
        conn.revert_all_migrations(DIESEL_MIGRATIONS)
            .map(|versions| versions.len())
            .map_err(|e| e.to_string())
    })
    .await;
    assert_eq!(reverted, Ok(MIGRATIONS.len()));
    assert!(recorded(&client).await.is_empty());
    assert!(
        !table_exists(&client, "map_state").await,
        "the first down.sql ran"
    );

    assert_eq!(
        schema::apply(&mut client).await.expect("after the revert"),
        MIGRATIONS.len()
    );
    assert!(table_exists(&client, "map_state").await);
}
