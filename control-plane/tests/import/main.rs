//! `import` (what `shard-admin import` runs) through the control plane's library alone,
//! no gateway: a 100,000-row table of a separate database imported while a writer keeps
//! changing it, the importer killed (-9) at five different steps and resumed, then cut
//! over: every source row equals its record, on its owner only, readable through the
//! request path; the source refuses writes after. Bad input is refused with nothing
//! recorded or installed; an abort leaves both sides as before.
//!
//! Each test works in scratch databases of its own (`test_support::scratch`) and a
//! source database beside them (`test_support::import_source`), so the shared map
//! never changes and no server is stopped. The importer runs as a child process (this
//! test binary run again, so its fault points can kill it with SIGKILL). With the
//! environment of `eval "$(./setup.sh env)"`:
//! `flock -s /tmp/sg-cluster.lock cargo test -p control-plane --test import`

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use control_plane::import::runner::{self, Request};
use control_plane::import::{abort, Import, ImportError, Imports, Phase};
use control_plane::map::change;
use shard_manager::wal::Consistency;
use shard_manager::{config, Cluster, ClusterSettings, Found, RecordId, ShardKey};
use test_support::import_source::{orders_table, request, source_rows, SourceDb, Writer};
use test_support::scratch::{record, Scratch};

/// The importer's child process (see [`importer_process`]): nothing in a normal run.
#[tokio::test]
#[ignore = "run by the import tests as the importer's child process"]
async fn importer_child() {
    if let (Ok(db), Ok(op), Ok(source)) = (
        std::env::var("SG_IMPORT_DB"),
        std::env::var("SG_IMPORT_OP"),
        std::env::var("SG_IMPORT_SOURCE"),
    ) {
        let mut settings: ClusterSettings = config::load(None).expect("settings");
        settings.database.dbname = db.clone();
        settings.metadata.dbname = db;
        let mut progress = |_: &Import| {};
        let im = runner::run(&settings, &request(&source, op == "cutover"), &mut progress)
            .await
            .expect("import");
        println!("IMPORT_ID={} IMPORT_PHASE={}", im.id, im.phase.as_str());
    }
}

/// How an importer child process ended.
#[derive(Debug)]
struct Ended {
    /// Killed by SIGKILL (a fault point), as opposed to exiting.
    killed: bool,
    success: bool,
    output: String,
}

/// Runs `op` (`run` or `cutover`) for `shop_orders` -> `orders` in a child process
/// against the scratch databases; `fault` names the step that kills it.
async fn importer_process(dbname: &str, source: &str, op: &str, fault: Option<&str>) -> Ended {
    const FAULT: &str = "SHARDGATE_FAULT_KILL_IMPORTER";
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "--exact",
        "importer_child",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .envs([
        ("SG_IMPORT_DB", dbname),
        ("SG_IMPORT_OP", op),
        ("SG_IMPORT_SOURCE", source),
    ])
    .env_remove(FAULT)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if let Some(step) = fault {
        cmd.env(FAULT, step);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run the child"))
        .await
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    Ended {
        killed: out.status.signal() == Some(9),
        success: out.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The newest import as the metadata database has it.
async fn newest(settings: &ClusterSettings) -> Option<Import> {
    let mut conn = control_plane::map::meta::connect(settings).await.unwrap();
    control_plane::map::schema::apply(&mut conn.client)
        .await
        .unwrap();
    Imports::new(&conn.client)
        .list(10)
        .await
        .unwrap()
        .into_iter()
        .next()
}

/// Every `orders` record on every shard: (key, id) -> (shard, data), and the pairs
/// stored on more than one shard.
async fn records(
    scratch: &Scratch,
) -> (
    HashMap<(String, String), (usize, serde_json::Value)>,
    Vec<String>,
) {
    let mut all = HashMap::new();
    let mut twice = Vec::new();
    for (shard, server) in scratch.settings.shards.iter().enumerate() {
        let client = scratch.connect(&server.primary).await;
        for r in client
            .query(
                "SELECT shard_key, id, data::text FROM records WHERE table_name = 'orders'",
                &[],
            )
            .await
            .unwrap()
        {
            let json: String = r.get(2);
            let pair: (String, String) = (r.get(0), r.get(1));
            if all.contains_key(&pair) {
                twice.push(format!("{pair:?}"));
            }
            all.insert(pair, (shard, serde_json::from_str(&json).unwrap()));
        }
    }
    (all, twice)
}

/// A strong read of `table`'s record (`key`, `id`) through the request path, with the
/// stored map: its data, or None when there is no such record.
async fn read_strong(
    scratch: &Scratch,
    table: &str,
    key: &str,
    id: &str,
) -> Option<serde_json::Value> {
    let map = scratch.map().await;
    let cluster = Cluster::with_map(&scratch.settings, &map).expect("the request path");
    let table = cluster.tables().parse(table).expect("a table of the map");
    let routed = cluster
        .router()
        .route(ShardKey::parse(key).unwrap())
        .unwrap();
    let served = cluster
        .read(
            &table,
            &routed,
            &RecordId::parse(id).unwrap(),
            Consistency::Strong,
        )
        .await
        .unwrap_or_else(|e| panic!("read ({key}, {id}): {e}"));
    let record: serde_json::Value = match served.value? {
        Found::Stored(record) => serde_json::to_value(&record).unwrap(),
        Found::Cached(cached) => serde_json::from_str(&cached.json).unwrap(),
    };
    Some(record["data"].clone())
}

const ROWS: i64 = 100_000;

#[tokio::test]
async fn a_table_imported_under_writes_with_the_importer_killed_five_times_equals_its_records() {
    let scratch = Scratch::create().await;
    let settings = scratch.settings.clone();
    let src = SourceDb::create(&settings).await;
    let source = src.client().await;
    orders_table(&source, ROWS).await;
    let db = settings.database.dbname.clone();
    let writer = Writer::start(&src, ROWS).await;

    // Killed after the capture is installed, before the first page.
    let run = importer_process(&db, &src.url, "run", Some("captured")).await;
    assert!(run.killed, "killed at captured: {}", run.output);
    let im = newest(&settings).await.expect("recorded");
    assert_eq!((im.phase, im.rows_copied), (Phase::Copying, 0));
    // Counted at the start, while the writer inserts and deletes.
    assert!(
        (ROWS - 2_000..ROWS + 2_000).contains(&im.rows_total),
        "{im:?}"
    );
    // Killed after writing the third page, before recording it.
    let run = importer_process(&db, &src.url, "run", Some("page:3")).await;
    assert!(run.killed, "killed at page:3: {}", run.output);
    let im = newest(&settings).await.unwrap();
    assert_eq!(
        (im.phase, im.rows_copied),
        (Phase::Copying, 10_000),
        "{im:?}"
    );
    assert!(im.detail.checkpoint.is_some());
    // Resumed after the checkpoint; killed replaying, before the log is trimmed.
    let run = importer_process(&db, &src.url, "run", Some("replay")).await;
    assert!(run.killed, "killed at replay: {}", run.output);
    let im = newest(&settings).await.unwrap();
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
    let im = newest(&settings).await.unwrap();
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
    let (got, twice) = records(&scratch).await;
    assert!(twice.is_empty(), "stored on two shards: {twice:?}");
    assert_eq!(want.len(), got.len(), "source rows vs records");
    let map = change::current(&settings).await.unwrap();
    let router = map.router().unwrap();
    for (pair, row) in &want {
        let (shard, data) = got
            .get(pair)
            .unwrap_or_else(|| panic!("no record for {pair:?}"));
        assert_eq!(data, row, "{pair:?}");
        let owner = router
            .route(ShardKey::parse(&pair.0).unwrap())
            .unwrap()
            .shard()
            .index();
        assert_eq!(*shard, owner, "{pair:?} is not on its owner");
    }
    // Through the request path too, for a sample that includes changed rows.
    for (pair, row) in want
        .iter()
        .filter(|(p, _)| p.0.starts_with("cust-moved") || p.0.starts_with("cust-new"))
        .take(10)
        .chain(want.iter().take(10))
    {
        let data = read_strong(&scratch, "orders", &pair.0, &pair.1).await;
        assert_eq!(data.as_ref(), Some(row), "{pair:?}");
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
    let im = newest(&settings).await.unwrap();
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
async fn refused_cutover(settings: &ClusterSettings, req: &Request) -> String {
    let mut progress = |_: &Import| {};
    let req = Request {
        cutover: true,
        ..req.clone()
    };
    match runner::run(settings, &req, &mut progress).await {
        Err(e) => e.to_string(),
        Ok(im) => panic!("the cut-over happened: {im:?}"),
    }
}

async fn refused(settings: &ClusterSettings, req: Request) -> String {
    let mut progress = |_: &Import| {};
    match runner::run(settings, &req, &mut progress).await {
        Err(ImportError::Refused(why)) => why,
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test]
async fn bad_imports_are_refused_changing_nothing_and_an_abort_undoes_one() {
    let scratch = Scratch::create().await;
    let settings = scratch.settings.clone();
    let src = SourceDb::create(&settings).await;
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
            Request {
                table: "nope".into(),
                ..base()
            },
            "has no table \"nope\"",
        ),
        (
            Request {
                key_column: "buyer".into(),
                ..base()
            },
            "has no column \"buyer\"",
        ),
        (
            Request {
                key_column: "placed_at".into(),
                ..base()
            },
            "column \"placed_at\" is timestamp with time zone",
        ),
        (
            Request {
                into: "secrets".into(),
                ..base()
            },
            "--into \"secrets\" is not a table of the map",
        ),
        (
            Request {
                table: "dup".into(),
                key_column: "k".into(),
                id_column: "i".into(),
                ..base()
            },
            "key \"a\" with id \"1\" is held by more than one row",
        ),
        (
            Request {
                table: "nulls".into(),
                key_column: "k".into(),
                id_column: "i".into(),
                ..base()
            },
            "rows with a NULL or empty key or id",
        ),
        (Request { batch: 0, ..base() }, "--batch 0 is out of range"),
        (
            Request {
                source: "postgres://x@127.0.0.1:1/none".into(),
                ..base()
            },
            "the source database (postgres://x@127.0.0.1:1/none) failed while connecting",
        ),
    ];
    for (req, want) in cases {
        let mut progress = |_: &Import| {};
        let got = runner::run(&settings, &req, &mut progress).await;
        let text = match got {
            Err(e) => e.to_string(),
            Ok(im) => panic!("not refused: {im:?}"),
        };
        assert!(text.contains(want), "{req:?}: {text}");
    }
    // A table that already holds records is not imported into.
    scratch.write_to("orders", &[record("k", 1, 0)]).await;
    let why = refused(&settings, base()).await;
    assert!(
        why.contains("orders already holds 1 record in Shardgate"),
        "{why}"
    );
    // Nothing was recorded or installed by any refusal.
    assert!(newest(&settings).await.is_none());
    assert_eq!(user_triggers(&source).await, 0);

    // An import into events, in sync, then aborted: records gone, source untouched.
    let req = Request {
        into: "events".into(),
        ..base()
    };
    let mut progress = |_: &Import| {};
    let im = runner::run(&settings, &req, &mut progress).await.unwrap();
    assert_eq!((im.phase, im.rows_copied), (Phase::Syncing, 1_000));
    // A second import into the same table from another source table is refused.
    let other = Request {
        table: "dup".into(),
        key_column: "k".into(),
        id_column: "i".into(),
        ..req.clone()
    };
    let why = refused(&settings, other).await;
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
    let why = refused_cutover(&settings, &req).await;
    assert!(
        why.contains("kept writing to public.shop_orders for 5 s"),
        "{why}"
    );
    assert_eq!(newest(&settings).await.unwrap().phase, Phase::Syncing);
    holder.batch_execute("ROLLBACK").await.unwrap();

    // A record written into events meanwhile (as through a gateway) makes the sides
    // differ: the cut-over is refused, the source is not frozen, the import is back to
    // syncing.
    let mut stray = record("cust-1", 0, 0);
    stray.id = "stray".into();
    scratch.write_to("events", &[stray]).await;
    let why = refused_cutover(&settings, &req).await;
    assert!(why.contains("verification refused the cut-over: 1000 rows in the source, 1001 records on the shards"), "{why}");
    assert_eq!(newest(&settings).await.unwrap().phase, Phase::Syncing);
    source
        .execute("UPDATE shop_orders SET total = 2 WHERE order_id = 2", &[])
        .await
        .expect("the source takes writes after a refused cut-over");
    let wrong = abort::abort(&settings, im.id, "postgres://x@elsewhere:5432/db").await;
    assert!(wrong.unwrap_err().to_string().contains("give its --source"));
    let aborted = abort::abort(&settings, im.id, &src.url).await.unwrap();
    assert_eq!(aborted.phase, Phase::Aborted);
    assert!(
        aborted.note.contains("1001 records deleted"),
        "{}",
        aborted.note
    );
    let again = abort::abort(&settings, im.id, &src.url).await;
    let again = again.map(|a| a.note).unwrap_err().to_string();
    assert!(
        again.contains("is aborted: there is nothing to abort"),
        "{again}"
    );
    assert_eq!(
        read_strong(&scratch, "events", "cust-1", "1").await,
        None,
        "aborted records are gone"
    );
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
