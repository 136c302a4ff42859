//! A failover in the middle of an import (issue #30). Shard 0 is a synchronous pair,
//! shard 1 a plain primary (`two_shards`); a source database beside shard 1's
//! (`import_source`) holds 5,000 orders that a writer keeps changing. The import
//! (`import::runner::run`, what `shard-admin import --cutover` runs) copies them in
//! pages of 250 into `orders`; shard 0's primary is killed (-9), its replica promoted a
//! second later (the HA manager's step):
//! - once 1,000 rows are copied;
//! - once the copy is done, before the writer's logged changes are replayed.
//!
//! The import is not restarted: its next page (or replay batch) fails on the dead
//! primary, it waits, reads the map again and goes on from its stored state (the copy's
//! checkpoint, the log entries not yet forgotten) against the primary the map names
//! now, catches up with the writer's changes and cuts over. Then: the import is
//! done, every source row is a record exactly once, with the row's data, on the shard
//! that owns its key and nowhere else (none lost, none doubled, none left over), the
//! source's capture and log are gone, the writer is refused by the frozen table, and
//! the map names the new primary at term 2.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use control_plane::import::runner::{self, Request};
use control_plane::import::{Import, Imports, Phase};
use control_plane::map::meta;
use shard_manager::{ShardId, ShardKey};

use crate::import_source::{self, records, Writer};
use crate::two_shards;

const ROWS: i64 = 5_000;
const BATCH: i64 = 250;
/// Rows copied when shard 0's primary dies mid-copy.
const KILL_AT: i64 = 1_000;

/// Where shard 0's primary dies.
#[derive(Clone, Copy, Debug, PartialEq)]
enum When {
    /// Once `KILL_AT` rows are copied.
    Copying,
    /// As the import starts syncing: copied, the writer's changes not yet replayed.
    Syncing,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_whose_target_fails_over_while_copying_resumes_on_the_new_primary() {
    import_across(When::Copying).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_whose_target_fails_over_while_syncing_resumes_on_the_new_primary() {
    import_across(When::Syncing).await;
}

/// Imports the orders while shard 0's primary dies `when`.
async fn import_across(when: When) {
    let t0 = Instant::now();
    let (shards, _init) = two_shards::start().await;
    let settings = shards.settings.clone();
    let src = import_source::create(&shards, ROWS).await;
    let writer = Writer::start(&src, ROWS).await;
    eprintln!("[{:?}] two shards and the source up", t0.elapsed());
    let request = Request {
        source: src.url.clone(),
        table: "shop_orders".into(),
        key_column: "customer".into(),
        id_column: "order_id".into(),
        into: "orders".into(),
        batch: BATCH,
        cutover: true,
    };

    let ended = AtomicBool::new(false);
    // When the primary died, and how far the import had come (rows copied and replayed).
    let killed = Mutex::new(None::<(Instant, i64)>);
    // After the kill: each report's note, and when the import went on.
    let notes = Mutex::new(Vec::<String>::new());
    let resumed = Mutex::new(None::<Instant>);
    let importing = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let pair = shards.pair.clone();
        let mut progress = |im: &Import| {
            let mut killed = killed.lock().unwrap();
            let done = im.rows_copied + im.rows_replayed;
            if let Some((_, at)) = *killed {
                notes.lock().unwrap().push(im.note.clone());
                let mut resumed = resumed.lock().unwrap();
                if resumed.is_none() && done > at {
                    *resumed = Some(Instant::now());
                }
                return;
            }
            let now = match when {
                When::Copying => im.phase == Phase::Copying && im.rows_copied >= KILL_AT,
                When::Syncing => im.phase == Phase::Syncing && im.rows_replayed == 0,
            };
            if now {
                tokio::task::block_in_place(|| pair.kill_primary());
                *killed = Some((Instant::now(), done));
                eprintln!(
                    "[{:?}] shard 0's primary killed ({when:?}), {} rows copied",
                    t0.elapsed(),
                    im.rows_copied
                );
            }
        };
        let done = runner::run(&settings, &request, &mut progress).await;
        ended.store(true, Ordering::Relaxed);
        (done, Instant::now())
    };
    let promote = async {
        while killed.lock().unwrap().is_none() && !ended.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if killed.lock().unwrap().is_none() {
            return; // the import ended first (the test fails on it below)
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let p = shards.pair.clone();
        tokio::task::spawn_blocking(move || p.promote_replica())
            .await
            .unwrap();
    };
    let ((done, finished), ()) = tokio::join!(importing, promote);
    let (killed, _) = killed
        .into_inner()
        .unwrap()
        .expect("shard 0's primary was killed while importing");
    let im = done.expect("the import finishes after the failover");
    let resumed = resumed.into_inner().unwrap();
    eprintln!(
        "[{:?}] import {} {} {:?} after the kill (went on {:?} after it); {} copied, {} changes replayed, fence {:?} ms; note: {}",
        t0.elapsed(),
        im.id,
        im.phase.as_str(),
        finished - killed,
        resumed.map(|r| r - killed),
        im.rows_copied,
        im.rows_replayed,
        im.fence_ms,
        im.note
    );
    assert_eq!(im.phase, Phase::Done, "{im:?}");
    assert!(resumed.is_some(), "the import went on after the kill");
    let old = shards.pair.primary();
    let notes = notes.into_inner().unwrap();
    let waited = notes
        .iter()
        .find(|n| n.starts_with("waiting: shard-0") && n.contains(&old));
    eprintln!(
        "the import noted: {}",
        waited.map_or("nothing", |n| n.as_str())
    );
    assert!(
        waited.is_some(),
        "the import waited for the dead primary: {notes:?}"
    );

    // The writer went on throughout and is refused by the frozen table now.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let changes = writer.stop().await;
    eprintln!("the writer: {changes:?}");
    assert!(changes.failed.is_empty(), "{:?}", changes.failed);
    assert!(changes.total() > 100, "the writer under way: {changes:?}");
    assert!(changes.refused > 0, "the frozen table refuses: {changes:?}");

    // The map names the new primary at term 2.
    let mut meta_conn = meta::connect(&settings).await.expect("metadata");
    let map = meta::load(&mut meta_conn.client).await.unwrap().unwrap();
    assert_eq!(
        (map.shards[0].primary.clone(), map.shards[0].term),
        (shards.pair.replica(), 2)
    );
    let active = Imports::new(&meta_conn.client).active_into("orders").await;
    assert!(active.unwrap().is_none(), "no import left active");

    // Every source row once, with its data, on its owner only.
    let want = src.rows().await;
    let router = map.router().unwrap();
    let mut got: BTreeMap<(String, String), Vec<(u32, String)>> = BTreeMap::new();
    let mut misplaced = Vec::new();
    for (shard, addr) in [(0, shards.pair.replica()), (1, shards.plain.primary())] {
        for (pair, data) in records(&shards, &addr, "orders").await {
            let key = ShardKey::parse(&pair.0).unwrap();
            if router.route(key).unwrap().shard() != ShardId(shard) {
                misplaced.push((shard, pair.clone()));
            }
            got.entry(pair).or_default().push((shard, data));
        }
    }
    let lost: Vec<_> = want.keys().filter(|p| !got.contains_key(*p)).collect();
    let doubled: Vec<_> = got.iter().filter(|(_, on)| on.len() > 1).collect();
    let extra: Vec<_> = got.keys().filter(|p| !want.contains_key(*p)).collect();
    let differ: Vec<_> = want
        .iter()
        .filter(|(p, data)| {
            got.get(*p)
                .is_some_and(|on| on.iter().any(|(_, d)| d != *data))
        })
        .collect();
    let on_new = got.values().filter(|on| on.iter().any(|(s, _)| *s == 0));
    eprintln!(
        "source rows {}, records {} ({} on the new primary): lost {}, doubled {}, left over {}, differing {}, misplaced {}",
        want.len(),
        got.len(),
        on_new.count(),
        lost.len(),
        doubled.len(),
        extra.len(),
        differ.len(),
        misplaced.len()
    );
    assert!(lost.is_empty(), "source rows with no record: {lost:?}");
    assert!(doubled.is_empty(), "records on two shards: {doubled:?}");
    assert!(extra.is_empty(), "records of no source row: {extra:?}");
    assert!(differ.is_empty(), "records that differ: {differ:?}");
    assert!(misplaced.is_empty(), "not on their owner: {misplaced:?}");
    assert_eq!(want.len(), got.len());
    assert!(want.len() as i64 > ROWS / 2);

    // Nothing of the capture is left on the source; only the freeze.
    let logged = src.count("SELECT count(*) FROM shardgate_import.log").await;
    let capture = src
        .count(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'shop_orders'::regclass \
             AND NOT tgisinternal AND tgname::text NOT LIKE '%\\_moved'",
        )
        .await;
    assert_eq!((logged, capture), (0, 0), "log entries, capture triggers");
}
