//! Queries while slots change hands: sorted walks of every page, run again and again
//! while slots move round the three shards and records are written, each see every
//! record that was there before and unchanged throughout exactly once; and an index
//! built before stays valid on every primary and serves the moved records on the shard
//! they moved to (a move copies rows into the target's `records`, whose indexes take
//! them as any write).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use shard_manager::store::query_index::IndexSpec;
use test_app::move_slots;

use crate::indexes::{
    assert_every_shard_scans, catalog, create, primary, seeded, until, RECORDS, TABLE,
};

/// Records there from the start (their age: `(i * 7) % 90`), never written again:
/// enough that the planner prefers the index.
const SEEDED: usize = RECORDS;

/// Every page of `body`, `limit` at a time: the (key, id) of each record, in order.
async fn walk(app: &test_app::TestApp, body: &Value) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    let mut body = body.clone();
    loop {
        let res = app.post_json("/api/query", None, &body).await;
        assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
        let page: Value = res.json().await.unwrap();
        for r in page["records"].as_array().unwrap() {
            seen.push((
                r["shard_key"].as_str().unwrap().to_owned(),
                r["id"].as_str().unwrap().to_owned(),
            ));
        }
        match page["next"].as_str() {
            Some(next) => body["cursor"] = json!(next),
            None => return seen,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn query_walks_while_slots_move_miss_none_and_repeat_none_and_the_index_moves_with_them() {
    let app = seeded(SEEDED).await;
    let spec = IndexSpec::parse(TABLE, &["age".into()]).unwrap();
    let res = create(&app, &json!({"table": TABLE, "fields": ["age"]})).await;
    assert_eq!(res.status().as_u16(), 202);
    until(
        &app,
        &format!("/api/indexes/{}", spec.name()),
        "valid",
        |_, v| v["state"] == "valid",
    )
    .await;

    // Slots move round the shards, one move after another, until the walks are done.
    let settings = app.settings.cluster.clone();
    let (walking, enough) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicBool::new(false)),
    );
    let mover = {
        let enough = enough.clone();
        tokio::spawn(async move {
            let round = [(0u32, 1u32), (1, 2), (2, 0)].into_iter().cycle();
            for (moves, (from, to)) in round.enumerate() {
                if enough.load(Ordering::SeqCst) && moves >= 3 {
                    return moves;
                }
                move_slots(&settings, from, to, 16).await;
            }
            unreachable!()
        })
    };
    // Records written all along, inside the walk's range.
    let writer = {
        let (client, url) = (app.client.clone(), app.url("/api/write"));
        let walking = walking.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while walking.load(Ordering::SeqCst) {
                let res = client
                    .post(&url)
                    .header("x-shard-key", format!("w{n}"))
                    .json(&json!({"table": TABLE, "id": format!("w{n}"),
                                  "data": {"age": n % 90, "name": "written"}}))
                    .send()
                    .await
                    .unwrap();
                assert!(res.status().is_success(), "write: {}", res.status());
                n += 1;
            }
            n
        })
    };

    // Sorted walks, again and again, until three moves (at least) have ended under them.
    let body = json!({"table": TABLE, "filter": [{"field": "age", "op": "gte", "value": 0}],
                      "sort": [{"field": "age"}, {"field": "name", "order": "desc"}],
                      "fields": ["age"], "limit": 250, "consistency": "strong"});
    let seeded: HashSet<(String, String)> = (0..SEEDED)
        .map(|i| (format!("k{i}"), format!("i{i}")))
        .collect();
    let mut walks = 0;
    loop {
        let seen = walk(&app, &body).await;
        let distinct: HashSet<&(String, String)> = seen.iter().collect();
        assert_eq!(distinct.len(), seen.len(), "walk {walks}: a record twice");
        let missed: Vec<_> = seeded.iter().filter(|r| !distinct.contains(r)).collect();
        assert!(
            missed.is_empty(),
            "walk {walks}: {} missed, e.g. {:?}",
            missed.len(),
            &missed[..missed.len().min(5)]
        );
        walks += 1;
        if mover.is_finished() || walks >= 40 {
            break;
        }
        if walks >= 3 {
            enough.store(true, Ordering::SeqCst);
        }
    }
    enough.store(true, Ordering::SeqCst);
    walking.store(false, Ordering::SeqCst);
    let moves = mover.await.unwrap();
    let written = writer.await.unwrap();
    assert!(moves >= 3, "{moves} moves");

    // The index: valid on every primary, still the only one of its name, and used on
    // every shard, the moved records among what it finds.
    for shard in 0..3 {
        let p = primary(&app, shard).await;
        assert_eq!(catalog(&p, &spec.name()).await, Some(true), "shard {shard}");
    }
    let view = until(
        &app,
        &format!("/api/indexes/{}", spec.name()),
        "valid",
        |_, v| v["state"] == "valid",
    )
    .await;
    assert_eq!(view["shards"].as_array().unwrap().len(), 3, "{view}");
    let res = app
        .post_json(
            "/api/query",
            None,
            &json!({"table": TABLE, "filter": [{"field": "age", "op": "gte", "value": 85}],
                    "sort": [{"field": "age"}], "limit": 20, "explain": true,
                    "count": "exact", "consistency": "strong"}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let page: Value = res.json().await.unwrap();
    assert_every_shard_scans(&page, &spec.name(), "after the moves");
    // Ages 85-89: 5 of every 90 seeded records, and of every 90 written.
    let expected = (0..SEEDED).filter(|i| (i * 7) % 90 >= 85).count()
        + (0..written).filter(|n| n % 90 >= 85).count();
    assert_eq!(page["total"], json!(expected), "after {walks} walks");
}
