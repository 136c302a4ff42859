//! `shard-admin import`: a 100,000-row table of a separate database imported while
//! a writer keeps changing it, the importer killed (-9) at five different steps and
//! resumed, then cut over: every source row equals its record, on its owner only,
//! readable through the gateway; the source refuses writes after. Bad input is refused
//! with nothing recorded or installed; an abort leaves both sides as before.

use std::time::Duration;

use control_plane::import::{abort, runner};
use control_plane::import::{Import, ImportError, Phase};
use control_plane::map::change;
use serde_json::json;

use crate::helpers::spawn_app;
use crate::importer::{
    importer_process, newest, orders_table, records, request, source_rows, SourceDb, Writer,
};
use crate::outage::serial;

/// The importer's child process (see `importer::importer_process`): nothing in a normal run.
#[tokio::test]
#[ignore = "run by the import tests as the importer's child process"]
async fn importer_child() {
    if let (Ok(db), Ok(op), Ok(source)) = (
        std::env::var("SG_IMPORT_DB"),
        std::env::var("SG_IMPORT_OP"),
        std::env::var("SG_IMPORT_SOURCE"),
    ) {
        crate::importer::child(&db, &op, &source).await;
    }
}

const ROWS: i64 = 100_000;

#[tokio::test]
async fn a_table_imported_under_writes_with_the_importer_killed_five_times_equals_its_records() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let src = SourceDb::create(&app).await;
    let source = src.client().await;
    orders_table(&source, ROWS).await;
    let db = app.settings.cluster.database.dbname.clone();
    let writer = Writer::start(&src, ROWS).await;

    // Killed after the capture is installed, before the first page.
    let run = importer_process(&db, &src.url, "run", Some("captured")).await;
    assert!(run.killed, "killed at captured: {}", run.output);
    let im = newest(&app.settings.cluster).await.expect("recorded");
    assert_eq!((im.phase, im.rows_copied), (Phase::Copying, 0));
    // Counted at the start, while the writer inserts and deletes.
    assert!(
        (ROWS - 2_000..ROWS + 2_000).contains(&im.rows_total),
        "{im:?}"
    );
    // Killed after writing the third page, before recording it.
    let run = importer_process(&db, &src.url, "run", Some("page:3")).await;
    assert!(run.killed, "killed at page:3: {}", run.output);
    let im = newest(&app.settings.cluster).await.unwrap();
    assert_eq!(
        (im.phase, im.rows_copied),
        (Phase::Copying, 10_000),
        "{im:?}"
    );
    assert!(im.detail.checkpoint.is_some());
    // Resumed after the checkpoint; killed replaying, before the log is trimmed.
    let run = importer_process(&db, &src.url, "run", Some("replay")).await;
    assert!(run.killed, "killed at replay: {}", run.output);
    let im = newest(&app.settings.cluster).await.unwrap();
    assert_eq!(im.phase, Phase::Syncing, "{im:?}");
    assert!(im.rows_copied >= ROWS, "{im:?}");
    // In sync, the source still taking writes.
    let run = importer_process(&db, &src.url, "run", None).await;
    assert!(run.success, "in sync: {}", run.output);
    assert!(
        run.output.contains("IMPORT_PHASE=syncing"),
        "{}",
        run.output
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Killed under the fence, before the freeze commits: the writers go on.
    let run = importer_process(&db, &src.url, "cutover", Some("before-freeze-commit")).await;
    assert!(run.killed, "killed before the freeze: {}", run.output);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Killed after the freeze committed, before the metadata says so.
    let run = importer_process(&db, &src.url, "cutover", Some("frozen")).await;
    assert!(run.killed, "killed after the freeze: {}", run.output);
    let im = newest(&app.settings.cluster).await.unwrap();
    assert_eq!(im.phase, Phase::CuttingOver, "{im:?}");
    let run = importer_process(&db, &src.url, "cutover", None).await;
    assert!(run.success, "cut over: {}", run.output);
    assert!(run.output.contains("IMPORT_PHASE=done"), "{}", run.output);

    // The writer is refused from the cut-over on.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let changes = writer.stop().await;
    assert!(
        changes.failed.is_empty(),
        "writer failures: {:?}",
        changes.failed
    );
    assert!(
        changes.inserts > 20 && changes.updates > 20 && changes.deletes > 20 && changes.rekeys > 20,
        "the writer kept changing the table: {changes:?}"
    );
    assert!(changes.refused > 0, "{changes:?}");
    assert!(
        changes.refusal.contains("was imported into Shardgate")
            && changes.refusal.contains("table orders"),
        "{}",
        changes.refusal
    );

    // Every source row equals its record, stored once, on its owner.
    let want = source_rows(&source).await;
    let (got, twice) = records(&app).await;
    assert!(twice.is_empty(), "stored on two shards: {twice:?}");
    assert_eq!(want.len(), got.len(), "source rows vs records");
    let map = change::current(&app.settings.cluster).await.unwrap();
    let router = map.router().unwrap();
    for (pair, row) in &want {
        let (shard, data) = got
            .get(pair)
            .unwrap_or_else(|| panic!("no record for {pair:?}"));
        assert_eq!(data, row, "{pair:?}");
        let owner = router
            .route(shard_manager::ShardKey::parse(&pair.0).unwrap())
            .unwrap()
            .shard()
            .index();
        assert_eq!(*shard, owner, "{pair:?} is not on its owner");
    }
    // Through the gateway too, for a sample that includes changed rows.
    for (pair, row) in want
        .iter()
        .filter(|(p, _)| p.0.starts_with("cust-moved") || p.0.starts_with("cust-new"))
        .take(10)
        .chain(want.iter().take(10))
    {
        let res = app.read_strong(&pair.0, "orders", &pair.1).await;
        assert_eq!(res.status().as_u16(), 200, "{pair:?}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(&body["record"]["data"], row, "{pair:?}");
    }
    // Nothing of the capture is left; only the freeze.
    let triggers: Vec<String> = source
        .query(
            "SELECT tgname::text FROM pg_trigger WHERE tgrelid = 'shop_orders'::regclass",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(triggers.len(), 1, "{triggers:?}");
    assert!(triggers[0].ends_with("_moved"), "{triggers:?}");
    let logged: i64 = source
        .query_one("SELECT count(*) FROM shardgate_import.log", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(logged, 0);
    let im = newest(&app.settings.cluster).await.unwrap();
    assert_eq!(im.phase, Phase::Done);
    // The run that froze the table was killed before recording its fence time.
    assert!(im.note.contains("recorded by a later run"), "{im:?}");
    assert!(im.rows_replayed > 0, "{im:?}");
    eprintln!(
        "import of {ROWS} rows under writes ({changes:?}): {} copied, {} changes replayed, fence {:?} ms",
        im.rows_copied, im.rows_replayed, im.fence_ms
    );
}

/// The error text of a cut-over of `req` that did not happen.
async fn refused_cutover(app: &crate::helpers::TestApp, req: &runner::Request) -> String {
    let mut progress = |_: &Import| {};
    let req = runner::Request {
        cutover: true,
        ..req.clone()
    };
    match runner::run(&app.settings.cluster, &req, &mut progress).await {
        Err(e) => e.to_string(),
        Ok(im) => panic!("the cut-over happened: {im:?}"),
    }
}

async fn refused(app: &crate::helpers::TestApp, req: runner::Request) -> String {
    let mut progress = |_: &Import| {};
    match runner::run(&app.settings.cluster, &req, &mut progress).await {
        Err(ImportError::Refused(why)) => why,
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test]
async fn bad_imports_are_refused_changing_nothing_and_an_abort_undoes_one() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let src = SourceDb::create(&app).await;
    let source = src.client().await;
    orders_table(&source, 1_000).await;
    source
        .batch_execute(
            "CREATE TABLE dup (k TEXT, i INT, at TIMESTAMPTZ NOT NULL DEFAULT now());
             INSERT INTO dup VALUES ('a', 1), ('a', 1), ('b', 2);
             CREATE TABLE nulls (k TEXT, i INT);
             INSERT INTO nulls VALUES ('a', 1), (NULL, 2);",
        )
        .await
        .unwrap();
    let base = || request(&src.url, false);
    let cases = [
        (
            runner::Request {
                table: "nope".into(),
                ..base()
            },
            "has no table \"nope\"",
        ),
        (
            runner::Request {
                key_column: "buyer".into(),
                ..base()
            },
            "has no column \"buyer\"",
        ),
        (
            runner::Request {
                key_column: "placed_at".into(),
                ..base()
            },
            "column \"placed_at\" is timestamp with time zone",
        ),
        (
            runner::Request {
                into: "secrets".into(),
                ..base()
            },
            "--into \"secrets\" is not a table of the map",
        ),
        (
            runner::Request {
                table: "dup".into(),
                key_column: "k".into(),
                id_column: "i".into(),
                ..base()
            },
            "key \"a\" with id \"1\" is held by more than one row",
        ),
        (
            runner::Request {
                table: "nulls".into(),
                key_column: "k".into(),
                id_column: "i".into(),
                ..base()
            },
            "rows with a NULL or empty key or id",
        ),
        (
            runner::Request { batch: 0, ..base() },
            "--batch 0 is out of range",
        ),
        (
            runner::Request {
                source: "postgres://x@127.0.0.1:1/none".into(),
                ..base()
            },
            "the source database (postgres://x@127.0.0.1:1/none) failed while connecting",
        ),
    ];
    for (req, want) in cases {
        let mut progress = |_: &Import| {};
        let got = runner::run(&app.settings.cluster, &req, &mut progress).await;
        let text = match got {
            Err(e) => e.to_string(),
            Ok(im) => panic!("not refused: {im:?}"),
        };
        assert!(text.contains(want), "{req:?}: {text}");
    }
    // A table that already holds records is not imported into.
    let res = app
        .bulk(
            None,
            &json!({"table": "orders", "records": [{"shard_key": "k", "id": "1", "data": {}}]}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let why = refused(&app, base()).await;
    assert!(
        why.contains("orders already holds 1 record in Shardgate"),
        "{why}"
    );
    // Nothing was recorded or installed by any refusal.
    assert!(newest(&app.settings.cluster).await.is_none());
    assert_eq!(user_triggers(&source).await, 0);

    // An import into events, in sync, then aborted: records gone, source untouched.
    let req = runner::Request {
        into: "events".into(),
        ..base()
    };
    let mut progress = |_: &Import| {};
    let im = runner::run(&app.settings.cluster, &req, &mut progress)
        .await
        .unwrap();
    assert_eq!((im.phase, im.rows_copied), (Phase::Syncing, 1_000));
    // A second import into the same table from another source table is refused.
    let other = runner::Request {
        table: "dup".into(),
        key_column: "k".into(),
        id_column: "i".into(),
        ..req.clone()
    };
    let why = refused(&app, other).await;
    assert!(
        why.contains(&format!("import {} is already filling events", im.id)),
        "{why}"
    );
    // A write transaction left open on the source: the fence gives up after its lock
    // patience instead of holding the writers queued behind it; back to syncing.
    let holder = src.client().await;
    holder
        .batch_execute("BEGIN; UPDATE shop_orders SET total = 3 WHERE order_id = 3")
        .await
        .unwrap();
    let why = refused_cutover(&app, &req).await;
    assert!(
        why.contains("kept writing to public.shop_orders for 5 s"),
        "{why}"
    );
    assert_eq!(
        newest(&app.settings.cluster).await.unwrap().phase,
        Phase::Syncing
    );
    holder.batch_execute("ROLLBACK").await.unwrap();

    // A record written through the gateway meanwhile makes the sides differ: the
    // cut-over is refused, the source is not frozen, the import is back to syncing.
    let res = app
        .bulk(None, &json!({"table": "events", "records": [{"shard_key": "cust-1", "id": "stray", "data": {}}]}))
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let why = refused_cutover(&app, &req).await;
    assert!(why.contains("verification refused the cut-over: 1000 rows in the source, 1001 records on the shards"), "{why}");
    assert_eq!(
        newest(&app.settings.cluster).await.unwrap().phase,
        Phase::Syncing
    );
    source
        .execute("UPDATE shop_orders SET total = 2 WHERE order_id = 2", &[])
        .await
        .expect("the source takes writes after a refused cut-over");
    let wrong = abort::abort(
        &app.settings.cluster,
        im.id,
        "postgres://x@elsewhere:5432/db",
    )
    .await;
    assert!(wrong.unwrap_err().to_string().contains("give its --source"));
    let aborted = abort::abort(&app.settings.cluster, im.id, &src.url)
        .await
        .unwrap();
    assert_eq!(aborted.phase, Phase::Aborted);
    assert!(
        aborted.note.contains("1001 records deleted"),
        "{}",
        aborted.note
    );
    let again = abort::abort(&app.settings.cluster, im.id, &src.url).await;
    assert!(again
        .unwrap_err()
        .to_string()
        .contains("is aborted: there is nothing to abort"));
    let res = app.read_strong("cust-1", "events", "1").await;
    assert_eq!(res.status().as_u16(), 404, "aborted records are gone");
    source
        .execute("UPDATE shop_orders SET total = 1 WHERE order_id = 1", &[])
        .await
        .expect("the source takes writes after an abort");
    assert_eq!(user_triggers(&source).await, 0, "the capture is gone");
}

/// Triggers someone created in the source database (none at the start).
async fn user_triggers(source: &tokio_postgres::Client) -> i64 {
    source
        .query_one(
            "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}
