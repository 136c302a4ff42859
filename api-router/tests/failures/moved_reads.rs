//! Reads of a key that just moved, through a gateway still routing with the old map
//! (a test switch stops it following) while the source's replica has not replayed the
//! switch (replay paused for real): a read carrying the token of a write the new owner
//! took returns that write, never the old row the source's replica still holds.

use std::time::{Duration, Instant};

use control_plane::moves::Phase;
use serde_json::{json, Value};
use shard_manager::ShardKey;
use test_app::spawn_app;
use test_support::outage::serial;

use crate::movers::{move_id, mover_process, status};
use crate::support::{keys_on, Gateway, ReplayPaused};

#[tokio::test]
async fn a_token_from_the_new_owner_is_honoured_by_a_gateway_behind_the_map() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let b = Gateway::start(app.settings.clone()).await;
    let key = keys_on(&app.settings, 0, 1).remove(0);
    let slot = app
        .router()
        .route(ShardKey::parse(&key).unwrap())
        .unwrap()
        .placement()
        .slot
        .0;
    let write = |base: String, n: i64| {
        let (client, key) = (app.client.clone(), key.clone());
        async move {
            let res = client
                .post(format!("{base}/api/write"))
                .header("x-shard-key", &key)
                .json(&json!({"table": "users", "id": "r", "data": {"n": n}}))
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success(), "write {n}: {}", res.status());
            res.headers()["x-shard-lsn"].to_str().unwrap().to_owned()
        }
    };
    write(app.address.clone(), 1).await;
    // Gateway A stops following the map; shard 0's replica stops replaying.
    app.cluster.map().freeze(true);
    let paused = ReplayPaused::begin("shard0-replica0".into());

    let db = app.settings.cluster.database.dbname.clone();
    let op = format!("startslots:0:1:{slot}");
    let mover = tokio::spawn(async move { mover_process(&db, &op, None).await });
    // The move switches, then waits in `cleaning` for gateway A to follow.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let conn = control_plane::map::meta::connect(&app.settings.cluster)
            .await
            .unwrap();
        let phase = control_plane::moves::Moves::new(&conn.client)
            .list(1)
            .await
            .ok()
            .and_then(|m| m.first().map(|m| m.phase));
        if phase == Some(Phase::Cleaning) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the move never switched: {phase:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let token = write(b.address.clone(), 2).await;
    assert!(
        token.starts_with("1:"),
        "gateway B wrote on the new owner: {token}"
    );

    let res = app
        .client
        .get(format!("{}/api/read?table=users&id=r", app.address))
        .header("x-shard-key", &key)
        .header("x-min-lsn", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["record"]["data"]["n"], 2,
        "read-your-writes through a gateway behind the map: {body}"
    );

    app.cluster.map().freeze(false);
    drop(paused);
    let ended = mover.await.unwrap();
    assert!(ended.success, "{}", ended.output);
    assert_eq!(
        status(&app.settings.cluster, move_id(&ended.output))
            .await
            .phase,
        Phase::Done
    );
}
