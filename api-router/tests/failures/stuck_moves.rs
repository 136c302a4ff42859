//! A move whose mover was killed, and that nobody resumed or aborted, is shown as stuck
//! by `/api/health` (`stuck_moves`, `warnings`; the status stays 200), by `/api/shards`
//! (each move's `stuck`, which the dashboard draws) and by `moves status`, once it has
//! been stopped `moves.stuck_after_secs`. One stopped at the switch (killed after the
//! target was told, before the source's COMMIT: what a failed COMMIT leaves) is shown
//! at once whatever the threshold, as two owners, and the shards confirm both own the
//! slots. Resumed to the end, nothing is stuck any more.

use std::time::Duration;

use serde_json::Value;
use shard_admin::commands::moves::{self as moves_cmd, MovesCommand};
use shard_manager::ClusterSettings;
use test_app::{spawn_app_with, TestApp};
use test_support::outage::serial;

use crate::movers::{move_id, mover_process, status};

/// `/api/health` once `done` holds (the move watch reads every `metadata.poll_ms`).
async fn health_until(app: &TestApp, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        let res = app.client.get(app.url("/api/health")).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200, "a stuck move changes no status");
        last = res.json().await.unwrap();
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} never shown: {last:#}");
}

/// `shard-admin moves status` as printed, with this threshold.
async fn moves_status(settings: &ClusterSettings, stuck_after_secs: u64) -> String {
    let mut settings = settings.clone();
    settings.moves.stuck_after_secs = stuck_after_secs;
    tokio::task::spawn_blocking(move || {
        moves_cmd::run(
            &settings,
            MovesCommand::Status {
                id: None,
                json: false,
            },
        )
    })
    .await
    .unwrap()
    .expect("moves status")
}

/// How many of `slots` a shard's primary says it owns.
fn owned(app: &TestApp, shard: usize, slots: &[i32]) -> i64 {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let list: Vec<String> = slots.iter().map(i32::to_string).collect();
    diesel::sql_query(format!(
        "SELECT count(*) AS n FROM shardgate_slots WHERE slot IN ({})",
        list.join(",")
    ))
    .get_result::<N>(&mut app.connect(&app.primary(shard)))
    .unwrap()
    .n
}

#[tokio::test]
async fn a_stopped_move_is_shown_stuck_and_one_stopped_at_the_switch_at_once_as_two_owners() {
    // Arrange: a short threshold, and nothing stuck yet.
    let _serial = serial().await;
    let app = spawn_app_with(|s| s.cluster.moves.stuck_after_secs = 2).await;
    let settings = app.settings.cluster.clone();
    let db = settings.database.dbname.clone();
    let calm = app.get_json("/api/health").await;
    assert_eq!(calm["stuck_moves"], serde_json::json!([]), "{calm:#}");
    assert_eq!(calm["warnings"], serde_json::json!([]), "{calm:#}");

    // Act: the mover killed mid-copy, left alone past the threshold.
    let killed = mover_process(&db, "start:0:1:4", Some("copy")).await;
    assert!(killed.killed, "killed at copy: {}", killed.output);
    let id = move_id(&killed.output);
    let health = health_until(&app, "the stopped move", |h| {
        h["stuck_moves"].as_array().is_some_and(|s| !s.is_empty())
    })
    .await;

    // Assert: health, /api/shards and `moves status` show it, and say what to do.
    assert_eq!(health["healthy"], true);
    let stuck = &health["stuck_moves"][0];
    assert_eq!(stuck["id"], id);
    assert_eq!(stuck["phase"], "copying");
    assert_eq!(stuck["two_owners"], false);
    assert!(stuck["stopped_secs"].as_f64().unwrap() >= 2.0, "{stuck}");
    let warning = health["warnings"][0].as_str().unwrap();
    assert_eq!(warning, stuck["warning"]);
    for needed in [
        &format!("move {id} (4 slot(s) "),
        "shard-0 to shard-1) stopped ",
        "in phase copying, neither resumed nor aborted: shard-0 logs every change",
        &format!("`shard-admin moves resume {id}`"),
        &format!("`shard-admin moves abort {id}`"),
    ] {
        assert!(
            warning.contains(needed),
            "{needed:?} missing from {warning}"
        );
    }
    let shards = app.get_json("/api/shards").await;
    let shown = &shards["moves"][0];
    assert_eq!(shown["id"], id);
    assert_eq!(shown["stuck"]["phase"], "copying", "{shown:#}");
    let printed = moves_status(&settings, 2).await;
    assert!(
        printed.contains(&format!("warning: move {id} (4 slot(s) ")),
        "{printed}"
    );
    let patient = moves_status(&settings, 3600).await;
    assert!(!patient.contains("warning:"), "under an hour: {patient}");

    // Act: resumed, and killed at the switch after the target was told.
    let at_switch = mover_process(&db, &format!("resume:{id}"), Some("switch-before-commit")).await;
    assert!(
        at_switch.killed,
        "killed at the switch: {}",
        at_switch.output
    );

    // Assert: two owners for real, shown at once even with an hour's threshold.
    let mv = status(&settings, id).await;
    assert_eq!(mv.phase.as_str(), "switching");
    assert_eq!(
        owned(&app, 0, &mv.detail.slots),
        4,
        "the source still owns the slots"
    );
    assert_eq!(
        owned(&app, 1, &mv.detail.slots),
        4,
        "the target owns them too"
    );
    let printed = moves_status(&settings, 3600).await;
    assert!(
        printed.contains(&format!(
            "in phase switching, at the switch: shard-1 may own the slots while shard-0 still \
             does (two owners) until `shard-admin moves resume {id}` settles it"
        )),
        "{printed}"
    );
    let health = health_until(&app, "two owners", |h| {
        h["stuck_moves"][0]["two_owners"] == true
    })
    .await;
    assert!(
        health["warnings"][0]
            .as_str()
            .unwrap()
            .contains("(two owners)"),
        "{health:#}"
    );

    // Resumed to the end: nothing stuck, one owner.
    let done = mover_process(&db, &format!("resume:{id}"), None).await;
    assert!(done.success, "resumed: {}", done.output);
    health_until(&app, "no stuck move", |h| {
        h["warnings"] == serde_json::json!([])
    })
    .await;
    assert_eq!(owned(&app, 0, &mv.detail.slots), 0);
    assert_eq!(owned(&app, 1, &mv.detail.slots), 4);
    assert!(!moves_status(&settings, 0).await.contains("warning:"));
}
