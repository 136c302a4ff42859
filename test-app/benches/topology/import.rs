//! The import benchmark (not part of a normal run; figures in docs/BENCHMARKS.md):
//!
//! ```text
//! eval "$(./setup.sh env)"
//! cargo bench -p test-app --bench topology -- import
//! ```
//!
//! 1. Rows imported per second (copy and sync of a 100,000-row source table, no writer)
//!    ÷ rows per second of a plain binary COPY of the same rows, shaped as records, from
//!    the source into a table like `records` on one shard.
//! 2. How long the cut-over holds the source's writers (the fence), for that table,
//!    over five imports, with a writer changing the source all along.

use std::time::Instant;

use control_plane::import::{runner, Import, Phase};
use shard_manager::servers::connection_url;
use test_app::{spawn_app, TestApp};
use test_support::import_source::{connect, orders_table, request, SourceDb, Writer};
use test_support::outage::serial;

use crate::copy::copy_between;

const ROWS: i64 = 100_000;
const COLUMNS: &str = "table_name, shard_key, id, slot, data, version, created_at, updated_at";

/// Rows per second of a binary COPY of the source rows, as records, into a scratch
/// table like `records` on shard 0.
async fn plain_copy(app: &TestApp, source: &tokio_postgres::Client) -> f64 {
    let target = connect(&connection_url(
        &app.settings.cluster.database,
        &app.primary(0),
    ))
    .await;
    target
        .batch_execute("CREATE TABLE bench_import (LIKE records INCLUDING ALL)")
        .await
        .unwrap();
    let started = Instant::now();
    let rows = copy_between(
        source,
        "COPY (SELECT 'orders'::text, customer, order_id::text, 0, to_jsonb(t), 1::bigint,
                      now(), now() FROM shop_orders t) TO STDOUT (FORMAT binary)",
        &target,
        &format!("COPY bench_import ({COLUMNS}) FROM STDIN (FORMAT binary)"),
    )
    .await;
    let secs = started.elapsed().as_secs_f64();
    target
        .batch_execute("DROP TABLE bench_import")
        .await
        .unwrap();
    rows as f64 / secs
}

async fn import(app: &TestApp, src: &SourceDb, into: &str, cutover: bool) -> (Import, f64) {
    let mut progress = |_: &Import| {};
    let req = runner::Request {
        into: into.into(),
        ..request(&src.url, cutover)
    };
    let started = Instant::now();
    let im = runner::run(&app.settings.cluster, &req, &mut progress)
        .await
        .unwrap();
    (im, started.elapsed().as_secs_f64())
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub async fn run() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let src = SourceDb::create(&app.settings.cluster).await;
    let source = src.client().await;
    orders_table(&source, ROWS).await;

    let copy_rate = plain_copy(&app, &source).await;
    let (im, secs) = import(&app, &src, "orders", false).await;
    assert_eq!((im.phase, im.rows_copied), (Phase::Syncing, ROWS));
    let import_rate = ROWS as f64 / secs;
    eprintln!(
        "import of {ROWS} rows (3 shards): {secs:.2} s, {import_rate:.0} rows/s; plain COPY into one shard: {copy_rate:.0} rows/s; ratio {:.2}",
        import_rate / copy_rate
    );
    let (im, _) = import(&app, &src, "orders", true).await;
    eprintln!("cut-over without writers: fence {:?} ms", im.fence_ms);

    // Five imports into another table, each cut over under a writer; the source table
    // is unfrozen between them.
    let mut fences = Vec::new();
    for round in 0..5 {
        let tables = ["users", "products", "events"];
        let into = tables[round % tables.len()];
        for shard in 0..app.settings.cluster.shards.len() {
            let c = connect(&connection_url(
                &app.settings.cluster.database,
                &app.primary(shard),
            ))
            .await;
            c.execute("DELETE FROM records WHERE table_name = $1", &[&into])
                .await
                .unwrap();
        }
        source
            .batch_execute(
                "DO $$ DECLARE t text; BEGIN
                   FOR t IN SELECT tgname FROM pg_trigger WHERE NOT tgisinternal LOOP
                     EXECUTE format('DROP TRIGGER %I ON shop_orders', t);
                   END LOOP; END $$;",
            )
            .await
            .unwrap();
        let writer = Writer::start(&src, ROWS).await;
        let (_, _) = import(&app, &src, into, false).await;
        let (im, _) = import(&app, &src, into, true).await;
        let changes = writer.stop().await;
        assert!(changes.failed.is_empty(), "{:?}", changes.failed);
        fences.push(im.fence_ms.unwrap() as f64);
    }
    fences.sort_by(f64::total_cmp);
    eprintln!(
        "cut-over under a writer, 5 imports of {ROWS} rows: fence p50 {:.0} ms, max {:.0} ms ({fences:?})",
        pct(&fences, 0.5),
        pct(&fences, 1.0)
    );
}
