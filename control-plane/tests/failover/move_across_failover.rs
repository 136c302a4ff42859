//! A failover in the middle of a slot move (issue #30). Shard 0 is a synchronous pair,
//! shard 1 a plain primary (`two_shards`); 256 slots move between them while two
//! writers write to both shards, and shard 0's primary is killed (-9) at a chosen step
//! of the move, its replica promoted a second later (the HA manager's step):
//! - shard 0 the source, killed right after the copy's first group (64 slots) committed;
//! - shard 0 the target, killed at the same point;
//! - shard 0 the source, killed as the move reaches the switch (the fence);
//! - nothing killed: as the move reaches the switch another process stores a new map
//!   version (as a gateway recording another shard's failover would), so the switch's
//!   store finds the map changed after the source gave the slots up; the mover tries
//!   again and stores them on the changed map.
//!
//! The mover (`moves::mover::run`, what `move-slots` and `moves resume` run) is not
//! restarted: its next step fails on the dead primary, it waits, reads the map again and
//! carries on against the primary the map names now (the change log and the copy's
//! checkpoint came over with synchronous replication). Then: the move is done, the map
//! (v3) gives the slots to the target and names the new primary at term 2, every
//! acknowledged write (before and during the move) is stored exactly once, at its
//! acknowledged version, on its owner and nowhere else, and the source holds no rows of
//! the moved slots and no change log.
//!
//! The scenario ([`move_across`]) is written against `shards::Shards`: `move_on_autoctl`
//! runs it with pg_auto_failover promoting shard 0's secondary instead of the test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use control_plane::map::meta;
use control_plane::moves::mover::{self, Request};
use control_plane::moves::plan::Which;
use control_plane::moves::{Move, Phase};
use shard_manager::{MapVersion, ShardId, ShardKey};
use test_support::failover::workload::{
    lost_and_twice, parse_versions, stored_versions_sql, write_before, writer, Tally,
};

use crate::shards::Shards;
use crate::two_shards;

/// Where shard 0's primary dies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum When {
    /// Once the copy's first group is committed.
    Copying,
    /// As the move reaches the switch, before its fence.
    Switching,
    /// Nothing dies: as the move reaches the switch (its map read), another process
    /// stores a new map version, as a gateway recording another shard's failover would;
    /// the switch's store of its map then finds the map changed.
    MapChanged,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_move_whose_source_fails_over_while_copying_resumes_on_the_new_primary() {
    on_pair(0, When::Copying).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_move_whose_target_fails_over_while_copying_resumes_on_the_new_primary() {
    on_pair(1, When::Copying).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_move_whose_source_fails_over_at_the_switch_resumes_on_the_new_primary() {
    on_pair(0, When::Switching).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_move_whose_map_changes_under_its_switch_stores_it_on_the_next_try() {
    on_pair(0, When::MapChanged).await;
}

/// A new map version with nothing changed, stored as any map change is (a history line
/// `test`).
async fn another_map_change(settings: &shard_manager::ClusterSettings) {
    let mut conn = meta::connect(settings).await.expect("metadata");
    let map = meta::load(&mut conn.client).await.unwrap().unwrap();
    let mut next = map.clone();
    next.version = MapVersion(map.version.0 + 1);
    let line = ("test", "test", "another change", serde_json::json!({}));
    meta::commit(&mut conn.client, map.version, &next, &[], line)
        .await
        .expect("the map changed");
}

/// The scenario on `two_shards`: the test promotes the pair's replica.
async fn on_pair(from: u32, when: When) {
    let t0 = Instant::now();
    let (shards, init) = two_shards::start().await;
    assert_eq!(init.version, MapVersion(1));
    eprintln!("[{:?}] two shards up", t0.elapsed());
    move_across(&shards, "a pair, promoted by hand", from, when, t0).await;
}

/// Moves 256 slots from shard `from` to the other while shard 0's primary dies `when`
/// (`how` it fails over, for the output; `t0` when the test started).
pub async fn move_across(shards: &impl Shards, how: &str, from: u32, when: When, t0: Instant) {
    let to = 1 - from;
    let settings = shards.settings().clone();
    let cluster = shards.cluster().clone();
    let before = write_before(&cluster, 300).await;
    eprintln!("[{:?}] 300 records written", t0.elapsed());
    let started = mover::start(
        &settings,
        &Request {
            kind: "move-slots".into(),
            from,
            to,
            which: Which::Count(256),
        },
    )
    .await
    .expect("the move is recorded");
    let slots = started.detail.slots.clone();
    let first = 512 * from as i32 + 256;
    assert_eq!(
        (slots[0], slots.len()),
        (first, 256),
        "the source's upper half"
    );

    let stop = AtomicBool::new(false);
    let killed = std::sync::Mutex::new(None::<Instant>);
    // The move's notes after the kill: the mover says what it waits for.
    let notes = std::sync::Mutex::new(Vec::<String>::new());
    let tally = Tally::default();
    let moving = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let kill = shards.kill();
        let mut progress = |mv: &Move| {
            let mut killed = killed.lock().unwrap();
            if killed.is_some() {
                notes.lock().unwrap().push(mv.note.clone());
            }
            let now = match when {
                When::Copying => mv.phase == Phase::Copying && !mv.detail.copied_slots.is_empty(),
                When::Switching | When::MapChanged => mv.phase == Phase::Switching,
            };
            if killed.is_none() && now {
                if when == When::Copying {
                    assert_eq!(mv.detail.copied_slots.len(), 64, "one group copied");
                }
                tokio::task::block_in_place(|| match when {
                    When::MapChanged => {
                        tokio::runtime::Handle::current().block_on(another_map_change(&settings))
                    }
                    _ => kill(),
                });
                *killed = Some(Instant::now());
                eprintln!(
                    "[{:?}] shard 0's primary killed ({when:?}, shard {from} -> shard {to})",
                    t0.elapsed()
                );
            }
        };
        let done = mover::run(&settings, started.id, &mut progress).await;
        stop.store(true, Ordering::Relaxed);
        (done, Instant::now())
    };
    // Shard 0's replica promoted once its primary is dead: by the test or by the HA
    // manager, as `shards` runs it.
    let promote = async {
        while killed.lock().unwrap().is_none() && !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let at = *killed.lock().unwrap();
        let at = match at {
            Some(at) if when != When::MapChanged => at,
            _ => return None, // the move ended first (the test fails on it below), or no kill
        };
        let promoted = shards.promoted(at).await;
        // Out of recovery is not yet writable: pg_auto_failover promotes read-only.
        let show = "SHOW default_transaction_read_only";
        while tokio::task::block_in_place(|| shards.on_new(show)) != "off" {
            assert!(at.elapsed() < Duration::from_secs(60), "still read-only");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some((promoted, Instant::now()))
    };
    let ((done, ended), promoted, _, _) = tokio::join!(
        moving,
        promote,
        writer(&cluster, "a", &stop, &tally),
        writer(&cluster, "b", &stop, &tally),
    );
    let done = done.expect("the move finishes after the failover");
    let killed = killed
        .into_inner()
        .unwrap()
        .expect("shard 0's primary was killed (or the map changed)");
    let fails_over = when != When::MapChanged;
    eprintln!(
        "[{:?}] move {} {} {:?} after the kill (or the map's change); {} writes acknowledged, {} failed; note: {}",
        t0.elapsed(),
        done.id,
        done.phase.as_str(),
        ended - killed,
        tally.acked_count(),
        tally.failed.load(Ordering::Relaxed),
        done.note
    );
    assert_eq!(done.phase, Phase::Done);
    // The switch stored v3 (the failover, or the other change, took v2): the summary and
    // the cleaning's wait for the gateways name that one.
    assert_eq!(done.detail.map_after, Some(3));
    assert!(done.note.ends_with("routed with map v3"), "{}", done.note);
    let (old, new) = shards.old_new();
    let notes = notes.into_inner().unwrap();
    let waited = notes.iter().find(|n| match fails_over {
        true => n.starts_with("waiting: shard-0") && n.contains(&old),
        false => n.starts_with("waiting: the map changed while this command ran"),
    });
    // Every wait it noted, in order (on pg_auto_failover: the dead node, then, often,
    // the promoted one still read-only).
    let mut waits: Vec<&String> = notes.iter().filter(|n| n.starts_with("waiting")).collect();
    waits.dedup();
    eprintln!("the mover noted: {waits:#?}");
    assert!(
        waited.is_some(),
        "the mover waited for the dead primary (or the changed map): {notes:?}"
    );
    assert!(tally.acked_count() > 50, "writers under way");

    // The map: the slots on the target, the new primary at term 2 (the old one at term
    // 1 when nothing failed over), three versions.
    let mut meta_conn = meta::connect(&settings).await.expect("metadata");
    let map = meta::load(&mut meta_conn.client).await.unwrap().unwrap();
    assert_eq!(map.version, MapVersion(3));
    let primary = match fails_over {
        true => (new, 2),
        false => (old, 1),
    };
    assert_eq!((map.shards[0].primary.clone(), map.shards[0].term), primary);
    assert!(slots.iter().all(|s| map.owners[*s as usize] == ShardId(to)));
    let actions: Vec<String> = meta::history_lines(&meta_conn.client, 5)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.action)
        .collect();
    let second = if fails_over { "failover" } else { "test" };
    assert_eq!(actions[..2], ["move-slots".to_owned(), second.to_owned()]);

    // Every acknowledged write once, on its owner only, at its acknowledged version.
    // Shard 0 is the promoted replica now (unless nothing failed over).
    let on = |shard: u32, sql: &str| match (shard, fails_over) {
        (0, true) => shards.on_new(sql),
        (0, false) => shards.on_old(sql),
        _ => shards.on_plain(sql),
    };
    let expected = tally.expected(&before);
    let sql = stored_versions_sql(&expected);
    let owner = |id: &str| {
        let key = ShardKey::parse(id).unwrap();
        cluster.router().route(key).unwrap().shard()
    };
    let mut stored = Vec::new();
    for shard in [0, 1] {
        let here = parse_versions(&on(shard, &sql));
        let misplaced: Vec<&String> = here
            .iter()
            .map(|(id, _)| id)
            .filter(|id| owner(id) != ShardId(shard))
            .collect();
        assert!(
            misplaced.is_empty(),
            "on shard {shard}, not its own: {misplaced:?}"
        );
        stored.extend(here);
    }
    stored.sort();
    let (lost, twice) = lost_and_twice(&expected, &stored);
    let range = format!("slot BETWEEN {} AND {}", slots[0], slots[slots.len() - 1]);
    let moved_rows = on(to, &format!("SELECT count(*) FROM records WHERE {range}"));
    eprintln!(
        "acknowledged {}: lost {lost}, applied twice {twice}; the target holds {moved_rows} rows of the moved slots",
        expected.len()
    );
    let (promoted, writable) = match promoted {
        Some((p, w)) => (format!("{:?}", p - killed), format!("{:?}", w - killed)),
        None => ("-".to_owned(), "-".to_owned()),
    };
    eprintln!(
        "TIMINGS move across a failover on {how} ({when:?}, shard {from} -> shard {to}): \
         kill -> promoted {promoted} (writable {writable}), kill -> move done {:?}; \
         acknowledged {}, lost {lost}, applied twice {twice}",
        ended - killed,
        expected.len()
    );
    assert_eq!((lost, twice), (0, 0));
    assert_eq!(stored, expected, "each acknowledged write stored once");

    // Nothing left behind on the source.
    let leftovers = on(
        from,
        &format!(
            "SELECT (SELECT count(*) FROM records WHERE {range}) || ',' || \
             (SELECT count(*) FROM shardgate_moving) || ',' || \
             (SELECT count(*) FROM shardgate_move_log) || ',' || \
             (SELECT count(*) FROM shardgate_slots WHERE {range})"
        ),
    );
    assert_eq!(
        leftovers, "0,0,0,0",
        "rows, moving slots, change log, owned slots"
    );
}
