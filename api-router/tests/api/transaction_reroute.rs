//! A transaction sent through a gateway whose map is stale: the shard refuses a part's
//! slot (SG001) before the decision, nothing of the transaction stands, the gateway
//! reloads its map and runs the whole transaction once more on the new owners (the
//! retry policy's row for transactions). One answer, a success.

use control_plane::map::change;
use serde_json::{json, Value};
use shard_manager::ShardKey;

use crate::transaction::{balance, prepared, spawn, upsert};

#[tokio::test]
async fn a_part_refused_for_its_slot_reroutes_the_whole_transaction_once() {
    let app = spawn().await;
    let stale = app.beside().await;
    stale.cluster.map().freeze(true);

    let on = |shard: u32| {
        (0..)
            .map(|i| format!("acct-r{i}"))
            .find(|k| app.shard_of(k).0 == shard)
            .unwrap()
    };
    let (a, b) = (on(0), on(1));
    let slot = app
        .router()
        .route(ShardKey::parse(&a).unwrap())
        .unwrap()
        .slot()
        .0;
    // a's slot moves to shard 2; the frozen gateway still routes it to shard 0.
    change::assign(&app.settings.cluster, &[format!("{slot}=2")], false)
        .await
        .expect("assign");

    let res = app
        .client
        .post(stale.url("/api/transaction"))
        .json(&json!({"operations": [upsert(&a, 7, Some(0)), upsert(&b, 8, Some(0))]}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["shard"], 2, "a on its new owner: {body}");
    assert_eq!(body["results"][1]["shard"], 1, "{body}");
    assert_eq!(body["protocol"], "two-phase");
    assert_eq!(balance(&app, &a).await.map(|(v, _)| v), Some(7));
    assert_eq!(balance(&app, &b).await.map(|(v, _)| v), Some(8));
    assert_eq!(
        prepared(&app),
        0,
        "the refused attempt left nothing prepared"
    );
    let log = app.cluster.decision_log().expect("a log").0.clone();
    // The refused attempt logged `abort`, the retry `commit`: only the latter is known
    // by its id here.
    let txid = body["txid"].as_str().unwrap().to_owned();
    let decided = log.decisions(std::slice::from_ref(&txid)).await.unwrap();
    assert_eq!(
        decided.get(&txid),
        Some(&shard_manager::cluster::txn::log::Decision::Commit)
    );
}
