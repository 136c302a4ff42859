//! `shard-admin rebalance` by bytes: a cluster whose data sits mostly on one shard is
//! planned (nothing changes), then evened out by online moves: every shard ends within
//! the tolerance of the mean, no record is lost or left on two shards, and the records
//! still read back through the gateway.

use control_plane::map::change;
use control_plane::moves::balance::{totals, Measure};
use diesel::sql_types::BigInt;
use diesel::{QueryableByName, RunQueryDsl};
use serde_json::json;
use shard_admin::commands::rebalance::{rebalance, weigh, RebalanceArgs};

use crate::helpers::{spawn_app, TestApp};
use crate::outage::serial;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Records on each shard of the stored map that the shard owns, and in all.
async fn placed(app: &TestApp) -> (i64, i64) {
    let map = change::current(&app.settings.cluster).await.unwrap();
    let (mut owned, mut all) = (0, 0);
    for shard in &map.shards {
        let slots: Vec<String> = map.slots_of(shard.id).iter().map(i32::to_string).collect();
        let mut conn = app.connect(&shard.primary);
        let mut count = |sql: String| {
            diesel::sql_query(sql)
                .get_result::<Count>(&mut conn)
                .unwrap()
                .n
        };
        all += count("SELECT count(*) AS n FROM records".into());
        owned += count(format!(
            "SELECT count(*) AS n FROM records WHERE slot IN ({})",
            slots.join(",")
        ));
    }
    (owned, all)
}

fn args(apply: bool) -> RebalanceArgs {
    RebalanceArgs {
        plan: !apply,
        apply,
        by: Measure::Bytes,
        tolerance: 0.10,
    }
}

#[tokio::test]
async fn rebalance_by_bytes_evens_out_a_skewed_cluster_online() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let settings = app.settings.cluster.clone();
    // 2,400 records of about 1 KiB on 600 keys of shard 0; 60 small ones elsewhere.
    let heavy: Vec<String> = (0..)
        .map(|i| format!("heavy-{i}"))
        .filter(|k| app.shard_of(k).index() == 0)
        .take(600)
        .collect();
    for chunk in heavy.chunks(100) {
        let records: Vec<_> = chunk
            .iter()
            .flat_map(|k| (0..4).map(move |n| json!({"shard_key": k, "id": format!("h{n}"), "data": {"pad": "x".repeat(1000)}})))
            .collect();
        let res = app
            .bulk(None, &json!({"table": "events", "records": records}))
            .await;
        assert_eq!(res.status().as_u16(), 200);
    }
    let light: Vec<_> = (0..60)
        .map(|i| json!({"shard_key": format!("light-{i}"), "id": "l", "data": {"i": i}}))
        .collect();
    let res = app
        .bulk(None, &json!({"table": "events", "records": light}))
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let (owned_before, all_before) = placed(&app).await;
    assert_eq!((owned_before, all_before), (2460, 2460));

    let before = change::current(&settings).await.unwrap();
    let admin = settings.clone();
    let planned = tokio::task::spawn_blocking(move || rebalance(&admin, args(false)))
        .await
        .unwrap()
        .expect("plan");
    assert!(planned.contains("from shard-0"), "{planned}");
    assert!(planned.contains("plan only"), "{planned}");
    assert_eq!(
        change::current(&settings).await.unwrap(),
        before,
        "a plan changes nothing"
    );

    let admin = settings.clone();
    let applied = tokio::task::spawn_blocking(move || rebalance(&admin, args(true)))
        .await
        .unwrap()
        .expect("apply");
    let after = change::current(&settings).await.unwrap();
    assert!(after.version.0 > before.version.0, "{applied}");
    let weights = weigh(&settings, &after, Measure::Bytes).await.unwrap();
    let t = totals(&after.owners, &weights, after.shards.len());
    let mean = t.iter().sum::<u64>() as f64 / t.len() as f64;
    let spread = t.iter().max().unwrap() - t.iter().min().unwrap();
    assert!(
        spread as f64 <= mean * 0.10,
        "bytes per shard {t:?} after:\n{applied}"
    );
    assert_eq!(
        placed(&app).await,
        (2460, 2460),
        "every record once, on its owner"
    );
    for key in heavy.iter().step_by(50) {
        let res = app.read_strong(key, "events", "h3").await;
        assert_eq!(res.status().as_u16(), 200, "{key}");
    }
    eprintln!("rebalanced: bytes per shard {t:?}\n{applied}");
}
