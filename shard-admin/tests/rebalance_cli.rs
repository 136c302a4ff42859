//! `shard-admin rebalance` by bytes as a user runs it, on databases of the test's own
//! (`common::scratch`, so the dev cluster's map never changes): a cluster whose data
//! sits mostly on one shard is planned (nothing changes), then evened out by online
//! moves: every shard ends within the tolerance of the mean, no record is lost or left
//! on two shards, and the records still read back through the request path. No gateway
//! runs and no server stops.

mod common;

use control_plane::import::shards::Writer;
use control_plane::import::source::SourceRow;
use control_plane::map::change;
use control_plane::moves::balance::{totals, Measure};
use diesel::sql_types::BigInt;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use serde_json::json;
use shard_admin::commands::rebalance::weigh;
use shard_manager::live_map::ShardMap;
use shard_manager::servers::connection_url;
use shard_manager::wal::Consistency;
use shard_manager::{Cluster, ClusterSettings, RecordId, ShardKey};

use common::scratch::Scratch;
use common::text;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Records on each shard of `map` that the shard owns, and in all.
fn placed(settings: &ClusterSettings, map: &ShardMap) -> (i64, i64) {
    let (mut owned, mut all) = (0, 0);
    for shard in &map.shards {
        let slots: Vec<String> = map.slots_of(shard.id).iter().map(i32::to_string).collect();
        let url = connection_url(&settings.database, &shard.primary);
        let mut conn = diesel::pg::PgConnection::establish(&url).expect("connect to a shard");
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

/// `shard-admin rebalance ARGS` on the scratch databases: what it printed.
fn rebalance(scratch: &Scratch, args: &[&str]) -> String {
    let mut all = vec!["rebalance", "--by", "bytes", "--tolerance", "0.10"];
    all.extend_from_slice(args);
    let out = scratch.output(&all);
    assert!(
        out.status.success(),
        "rebalance {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn rebalance_by_bytes_evens_out_a_skewed_cluster_online() {
    let scratch = Scratch::new();
    for command in ["migrate", "init"] {
        let (code, stderr) = scratch.run(&[command]);
        assert_eq!(code, Some(0), "{command}: {stderr}");
    }
    let settings = scratch.settings.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let before = rt.block_on(change::current(&settings)).unwrap();
    let router = before.router().unwrap();
    let shard_of = |key: &str| {
        router
            .route(ShardKey::parse(key).unwrap())
            .unwrap()
            .shard()
            .index()
    };
    // 2,400 records of about 1 KiB on 600 keys of shard 0; 60 small ones elsewhere,
    // written on their owners as an import writes them.
    let heavy: Vec<String> = (0..)
        .map(|i| format!("heavy-{i}"))
        .filter(|k| shard_of(k) == 0)
        .take(600)
        .collect();
    let mut rows: Vec<SourceRow> = heavy
        .iter()
        .flat_map(|k| {
            (0..4).map(move |n| SourceRow {
                key: k.clone(),
                id: format!("h{n}"),
                data: json!({"pad": "x".repeat(1000)}).to_string(),
            })
        })
        .collect();
    rows.extend((0..60).map(|i| SourceRow {
        key: format!("light-{i}"),
        id: "l".into(),
        data: json!({ "i": i }).to_string(),
    }));
    rt.block_on(async {
        let mut writer = Writer::open(&settings, "events").await.expect("writer");
        writer.apply(&rows, &[]).await.expect("write records");
    });
    assert_eq!(placed(&settings, &before), (2460, 2460));

    let planned = rebalance(&scratch, &["--plan"]);
    assert!(planned.contains("from shard-0"), "{planned}");
    assert!(planned.contains("plan only"), "{planned}");
    assert_eq!(
        rt.block_on(change::current(&settings)).unwrap(),
        before,
        "a plan changes nothing"
    );

    let applied = rebalance(&scratch, &["--apply"]);
    let after = rt.block_on(change::current(&settings)).unwrap();
    assert!(after.version.0 > before.version.0, "{applied}");
    let weights = rt
        .block_on(weigh(&settings, &after, Measure::Bytes))
        .unwrap();
    let t = totals(&after.owners, &weights, after.shards.len());
    let mean = t.iter().sum::<u64>() as f64 / t.len() as f64;
    let spread = t.iter().max().unwrap() - t.iter().min().unwrap();
    assert!(
        spread as f64 <= mean * 0.10,
        "bytes per shard {t:?} after:\n{applied}"
    );
    assert_eq!(
        placed(&settings, &after),
        (2460, 2460),
        "every record once, on its owner"
    );
    // Read back through the request path with the new map, as a gateway reads.
    rt.block_on(async {
        let cluster = Cluster::with_map(&settings, &after).expect("the request path");
        let table = cluster.tables().parse("events").unwrap();
        for key in heavy.iter().step_by(50) {
            let routed = cluster
                .router()
                .route(ShardKey::parse(key).unwrap())
                .unwrap();
            let read = cluster
                .read(
                    &table,
                    &routed,
                    &RecordId::parse("h3").unwrap(),
                    Consistency::Strong,
                )
                .await
                .unwrap_or_else(|e| panic!("read {key}: {e}"));
            assert!(read.value.is_some(), "{key} h3 is gone");
        }
    });
    eprintln!("rebalanced: bytes per shard {t:?}\n{applied}");
}
