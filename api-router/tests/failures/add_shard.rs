//! A shard added online (`shard-admin add-shard`, on the spare shard `setup.sh`
//! starts) under writers and readers going through a gateway started with three
//! shards: the gateway adds the new shard's pools without a restart, the new shard ends
//! with its fair share (a quarter of the slots), no request fails, nothing acknowledged
//! is lost or stored twice, and keys routed to the new shard are written and read there.
//! A query index recorded before is built (valid) on the new primary before its first
//! slot: the command says so before any move.
//! Then the shard is removed again (`remove-shard`) under writers: its slots move to
//! the others, it is retired (kept in the map, owning nothing), and the gateway no
//! longer counts it.

use std::time::Duration;

use control_plane::indexes;
use control_plane::map::change;
use serde_json::json;
use shard_admin::commands::add_shard::{add_shard, AddShardArgs};
use shard_admin::commands::remove_shard::{remove_shard, RemoveShardArgs};
use shard_manager::config::ShardSettings;
use shard_manager::routing::ShardId;
use shard_manager::store::query_index::IndexSpec;
use shard_manager::ShardKey;
use test_app::spawn_app;
use test_support::maintenance::connect_to;
use test_support::outage::serial;

use crate::movers::{check_clean_run, Workload};

/// The spare shard's servers (`./setup.sh env`).
fn spare() -> (String, String) {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run the tests through ./setup.sh test (or eval \"$(./setup.sh env)\")")
        })
    };
    (
        var("SHARDGATE_SPARE_PRIMARY"),
        var("SHARDGATE_SPARE_REPLICA"),
    )
}

#[tokio::test]
async fn a_shard_added_under_writes_takes_its_share_and_loses_nothing() {
    let _serial = serial().await;
    let (primary, replica) = spare();
    let app = spawn_app().await;
    let settings = app.settings.cluster.clone();
    // The test's database on the spare server too (the role and server are setup.sh's).
    let mut on_spare = settings.clone();
    on_spare.shards = vec![ShardSettings {
        primary: primary.clone(),
        ..settings.shards[0].clone()
    }];
    let dbname = settings.database.dbname.clone();
    tokio::task::spawn_blocking(move || shard_admin::create_database(&on_spare, &dbname))
        .await
        .unwrap()
        .expect("create the test database on the spare");
    let before = change::current(&settings).await.unwrap();
    assert_eq!(before.shards.len(), 3);
    // A query index, built on the three shards before the new one comes.
    let spec = IndexSpec::parse("users", &["score".to_owned()]).unwrap();
    let index = indexes::create(&settings, &spec).await.unwrap();
    indexes::reconcile(&settings).await.unwrap();

    let work = Workload::start(std::slice::from_ref(&app.address), 3, 40);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let args = AddShardArgs {
        primary: primary.clone(),
        replicas: vec![replica.clone()],
        no_move: false,
    };
    let admin = settings.clone();
    let summary = tokio::task::spawn_blocking(move || add_shard(&admin, args))
        .await
        .unwrap()
        .expect("add-shard");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = work.stop().await;

    let after = change::current(&settings).await.unwrap();
    assert_eq!(after.shards.len(), 4, "{summary}");
    // The index was valid on the new primary before a slot moved: said before the
    // first move, and in its catalog.
    let said = summary
        .find(&format!("shard-3 holds every index: {index}"))
        .unwrap_or_else(|| panic!("no index line: {summary}"));
    let first_move = summary.find("move ").unwrap_or(usize::MAX);
    assert!(said < first_move, "{summary}");
    let on_new = connect_to(&settings, &primary, &settings.database.dbname).await;
    let valid: Option<bool> = on_new
        .query_opt(
            "SELECT i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid \
             WHERE c.relname = $1",
            &[&index],
        )
        .await
        .unwrap()
        .map(|r| r.get(0));
    assert_eq!(valid, Some(true), "{summary}");
    assert_eq!(after.shards[3].primary, primary);
    let share = after.slots_of(ShardId(3)).len();
    assert_eq!(share, after.owners.len() / 4, "a fair share: {summary}");
    assert!(
        summary.contains(&format!("shard-3 owns {share} of")),
        "{summary}"
    );
    // The whole command's total: every move's slots, the new shard's share.
    assert!(
        summary.contains(&format!(" move(s): {share} slots in ")),
        "{summary}"
    );
    check_clean_run(&app, &seen).await;

    // The gateway routes to the new shard without a restart.
    let shards = app.get_json("/api/shards").await;
    assert_eq!(
        shards["shards"].as_array().map(Vec::len),
        Some(4),
        "{shards}"
    );
    let router = after.router().unwrap();
    let key = (0..)
        .map(|i| format!("new-shard-{i}"))
        .find(|k| router.route(ShardKey::parse(k).unwrap()).unwrap().shard() == ShardId(3))
        .unwrap();
    let res = app
        .write(
            &key,
            &json!({"table": "users", "id": "n", "data": {"on": 3}}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["shard"], 3);
    let read = app.read_strong(&key, "users", "n").await;
    assert_eq!(read.status().as_u16(), 200);

    // `seed` writes straight into the shards: it places with the stored map's servers
    // and router, so the new shard gets its share of generated records.
    let admin = settings.clone();
    let seeded = tokio::task::spawn_blocking(move || {
        let config = admin.validate().unwrap();
        let (servers, router, note) = shard_admin::commands::map::placement(&admin, config);
        assert_eq!(note, None);
        let args = shard_admin::tools::seed::SeedArgs {
            table: "events".into(),
            rows: 2_000,
            seed: 7,
            batch: 500,
            keys: Some(400),
        };
        shard_admin::tools::seed::seed(&servers, &router, &args).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(seeded.per_shard.len(), 4, "{seeded}");
    assert!(
        seeded.per_shard[3] > 0,
        "the new shard got records: {seeded}"
    );

    // Adding the same server again is refused, and changes nothing.
    let again = AddShardArgs {
        primary: primary.clone(),
        replicas: vec![],
        no_move: true,
    };
    let admin = settings.clone();
    let refused = tokio::task::spawn_blocking(move || add_shard(&admin, again))
        .await
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(refused.contains("already serves"), "{refused}");
    assert_eq!(change::current(&settings).await.unwrap(), after);

    // Removed again under writers: drained to the others, then retired.
    let work = Workload::start(std::slice::from_ref(&app.address), 3, 40);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let admin = settings.clone();
    let removed =
        tokio::task::spawn_blocking(move || remove_shard(&admin, RemoveShardArgs { shard: 3 }))
            .await
            .unwrap()
            .expect("remove-shard");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = work.stop().await;
    let last = change::current(&settings).await.unwrap();
    assert_eq!(last.shards.len(), 4, "a retired shard stays in the map");
    assert!(last.shards[3].retired, "{removed}");
    assert!(last.slots_of(ShardId(3)).is_empty(), "{removed}");
    assert!(removed.contains("shard-3 retired"), "{removed}");
    check_clean_run(&app, &seen).await;
    let read = app.read_strong(&key, "users", "n").await;
    assert_eq!(
        read.status().as_u16(),
        200,
        "the new shard's record moved back"
    );
    let health = app.get_json("/api/health").await;
    assert_eq!(health["shards"][3]["serving"], false, "{health}");
    assert_eq!(health["shards"][0]["serving"], true, "{health}");
    let admin = settings.clone();
    let refused =
        tokio::task::spawn_blocking(move || remove_shard(&admin, RemoveShardArgs { shard: 3 }))
            .await
            .unwrap()
            .unwrap_err()
            .to_string();
    assert!(refused.contains("already retired"), "{refused}");
    // Its server added again brings the same shard back (one server is never two shards).
    let back = AddShardArgs {
        primary: primary.clone(),
        replicas: vec![replica.clone()],
        no_move: true,
    };
    let admin = settings.clone();
    let again = tokio::task::spawn_blocking(move || add_shard(&admin, back))
        .await
        .unwrap()
        .expect("add-shard of a retired shard's server");
    let revived = change::current(&settings).await.unwrap();
    assert_eq!(revived.shards.len(), 4, "{again}");
    assert!(!revived.shards[3].retired, "{again}");
    assert!(again.contains("shard-3 joined"), "{again}");
    eprintln!("added:\n{summary}\nremoved:\n{removed}");
}
