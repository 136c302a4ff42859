//! The jobs module at work on the real topology, through the control plane's library
//! alone (no gateway): a slot moved with its rows between two shards and the map
//! changed; a mover that dies part-way left resumable, shown stuck, refused to a second
//! process while one holds it, then resumed with the writes made meanwhile; an abort
//! that leaves the source as it was; and a finished job that refuses every later step.
//!
//! Each test works in scratch databases of its own (`test_support::scratch`), so the
//! shared map never changes. They move data between the shared primaries, so they run
//! alone, under the cluster lock, with the environment of `eval "$(./setup.sh env)"`:
//! `(flock 9 && SHARDGATE_REPO=$PWD cargo test -p control-plane --test jobs 9>&-) 9>>/tmp/sg-cluster.lock`

use std::time::Duration;

use control_plane::jobs::JobError;
use control_plane::moves::plan::Which;
use control_plane::moves::{mover, stuck, undo, Move, MoveError, Moves, Phase};
use shard_manager::ShardId;
use test_support::scratch::{record, rows_in_one_slot, Scratch};

/// A move of `slot` from `from` to `to`, recorded (not yet run).
async fn start(scratch: &Scratch, from: u32, to: u32, slot: i32) -> Move {
    let request = mover::Request {
        kind: "move-slots".into(),
        from,
        to,
        which: Which::List(slot.to_string()),
    };
    mover::start(&scratch.settings, &request)
        .await
        .expect("start the move")
}

/// Runs move `id` in a task whose mover dies (panics, dropping its connections as a
/// killed process would) the first time it reports `dies`.
async fn run_until_it_dies(
    scratch: &Scratch,
    id: i64,
    dies: impl Fn(&Move) -> bool + Send + Sync + 'static,
) {
    let settings = scratch.settings.clone();
    let task = tokio::spawn(async move {
        let mut progress = |mv: &Move| {
            if dies(mv) {
                panic!(
                    "the mover dies in {} (a simulated crash)",
                    mv.phase.as_str()
                );
            }
        };
        mover::run(&settings, id, &mut progress).await
    });
    let ended = task.await;
    assert!(
        ended.as_ref().is_err_and(|e| e.is_panic()),
        "the mover died: {ended:?}"
    );
}

#[tokio::test]
async fn a_slot_moves_with_its_rows_and_the_map_gives_it_to_the_target() {
    let scratch = Scratch::create().await;
    let before = scratch.map().await;
    let (slot, rows) = rows_in_one_slot(&before, ShardId(0), 4, 25, 30);
    scratch.write(&rows).await;
    let on_source = scratch.records(ShardId(0), slot).await;
    assert_eq!(on_source.len(), 100, "4 keys of 25 records in slot {slot}");

    let mv = start(&scratch, 0, 1, slot).await;
    assert_eq!(
        (mv.phase, mv.detail.slots.clone()),
        (Phase::Capturing, vec![slot])
    );
    let mut phases = Vec::new();
    let mut progress = |m: &Move| {
        if phases.last() != Some(&m.phase) {
            phases.push(m.phase);
        }
    };
    let done = mover::run(&scratch.settings, mv.id, &mut progress)
        .await
        .expect("the move runs to its end");

    use Phase::*;
    assert_eq!(
        phases,
        [Capturing, Copying, CatchingUp, Switching, Cleaning, Done]
    );
    assert_eq!(
        (done.phase, done.rows_total, done.rows_copied),
        (Done, 100, 100)
    );
    assert!(
        done.fence_ms.is_some(),
        "writes waited at the switch: {done:?}"
    );
    assert_eq!(
        scratch.records(ShardId(1), slot).await,
        on_source,
        "the rows arrived"
    );
    assert!(
        scratch.records(ShardId(0), slot).await.is_empty(),
        "the source's rows are gone"
    );
    let after = scratch.map().await;
    assert_eq!(after.version.0, before.version.0 + 1);
    assert_eq!(done.detail.map_after, Some(after.version.0 as i64));
    assert_eq!(after.owners[slot as usize], ShardId(1));
    let changed: Vec<usize> = (0..after.owners.len())
        .filter(|s| after.owners[*s] != before.owners[*s])
        .collect();
    assert_eq!(
        changed,
        [slot as usize],
        "only the moved slot changed hands"
    );
}

#[tokio::test]
async fn a_dead_mover_leaves_a_stuck_move_that_only_its_claimant_resumes_with_the_writes_made_meanwhile(
) {
    let scratch = Scratch::create().await;
    let (slot, mut rows) = rows_in_one_slot(&scratch.map().await, ShardId(1), 3, 20, 10);
    scratch.write(&rows).await;
    let mv = start(&scratch, 1, 2, slot).await;
    run_until_it_dies(&scratch, mv.id, |m| m.phase == Phase::CatchingUp).await;

    // Nobody holds it: it is stopped where it died, with its copy recorded.
    let stopped = scratch.stopped(mv.id).await;
    assert_eq!(
        (stopped.phase, stopped.rows_copied),
        (Phase::CatchingUp, 60)
    );
    assert!(stopped
        .advice()
        .contains(&format!("moves resume {}", mv.id)));
    assert_eq!(stuck::judge(&stopped, 0.0, Duration::from_secs(3600)), None);
    let warned = stuck::judge(&stopped, 0.0, Duration::ZERO).expect("stuck past the threshold");
    assert_eq!(
        (warned.id, warned.phase.as_str(), warned.two_owners),
        (mv.id, "catching_up", false)
    );
    assert!(
        warned
            .warning
            .contains("neither resumed nor aborted: shard-1 logs every change"),
        "{}",
        warned.warning
    );

    // Another process claims it: it runs (so it is not stuck), and nobody else may
    // resume or abort it until that process goes.
    let other = scratch.meta().await;
    let held = Moves::new(&other).claim(mv.id).await.expect("claim");
    assert!(held.running, "the claimant's lock shows: {held:?}");
    assert_eq!(stuck::judge(&held, 0.0, Duration::ZERO), None);
    let mut quiet = |_: &Move| {};
    for refused in [
        mover::run(&scratch.settings, mv.id, &mut quiet)
            .await
            .map(|_| ()),
        undo::abort(&scratch.settings, mv.id).await.map(|_| ()),
    ] {
        match refused {
            Err(MoveError::Refused(why)) => assert!(why.contains("being worked on"), "{why}"),
            other => panic!("a claimed move was not refused: {other:?}"),
        }
    }
    drop(other);
    scratch.stopped(mv.id).await;

    // Writes made while it waited (changed, new, deleted) are captured, and replayed
    // when it resumes.
    rows[0] = record(&rows[0].key, 0, 1);
    let key = rows[0].key.clone();
    rows.push(record(&key, 99, 1));
    scratch.write(&rows).await;
    let primary = scratch.settings.shards[1].primary.clone();
    let deleted = scratch
        .connect(&primary)
        .await
        .execute(
            "DELETE FROM records WHERE shard_key = $1 AND id = 'e5'",
            &[&key],
        )
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let on_source = scratch.records(ShardId(1), slot).await;
    assert_eq!(on_source.len(), 60);

    let done = mover::run(&scratch.settings, mv.id, &mut quiet)
        .await
        .expect("resumed to its end");
    assert_eq!(done.phase, Phase::Done);
    assert!(
        done.rows_replayed >= 3,
        "the writes were replayed: {done:?}"
    );
    assert_eq!(scratch.records(ShardId(2), slot).await, on_source);
    assert!(scratch.records(ShardId(1), slot).await.is_empty());
    assert_eq!(scratch.map().await.owners[slot as usize], ShardId(2));
}

#[tokio::test]
async fn an_abort_leaves_the_source_as_it_was_and_the_finished_job_refuses_later_steps() {
    let scratch = Scratch::create().await;
    let before = scratch.map().await;
    let (slot, rows) = rows_in_one_slot(&before, ShardId(2), 2, 30, 0);
    scratch.write(&rows).await;
    let on_source = scratch.records(ShardId(2), slot).await;
    let mv = start(&scratch, 2, 0, slot).await;
    // Dies after its copy, before catching up.
    run_until_it_dies(&scratch, mv.id, |m| m.rows_copied > 0).await;
    let stopped = scratch.stopped(mv.id).await;
    assert_eq!((stopped.phase, stopped.rows_copied), (Phase::Copying, 60));
    assert_eq!(scratch.records(ShardId(0), slot).await, on_source, "copied");

    let aborted = undo::abort(&scratch.settings, mv.id).await.expect("abort");
    assert_eq!(aborted.phase, Phase::Aborted);
    assert!(
        aborted
            .note
            .starts_with("aborted: 60 copied row(s) deleted on shard-0"),
        "{}",
        aborted.note
    );
    assert!(
        scratch.records(ShardId(0), slot).await.is_empty(),
        "the copies are gone"
    );
    assert_eq!(
        scratch.records(ShardId(2), slot).await,
        on_source,
        "the source keeps its rows"
    );
    let after = scratch.map().await;
    assert_eq!(
        (after.version, after.owners),
        (before.version, before.owners)
    );
    let source = scratch.connect(&scratch.settings.shards[2].primary).await;
    let logging: i64 = source
        .query_one(
            "SELECT (SELECT count(*) FROM shardgate_moving) + (SELECT count(*) FROM shardgate_move_log)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(logging, 0, "the source logs nothing any more");

    // Finished: no step is recorded on it any more, whoever asks.
    let meta = scratch.meta().await;
    let moves = Moves::new(&meta);
    let stale = moves
        .set_phase(mv.id, Phase::Copying, Phase::CatchingUp, "late")
        .await;
    assert!(matches!(stale, Err(JobError::Changed { .. })), "{stale:?}");
    let reopened = moves
        .set_phase(mv.id, Phase::Aborted, Phase::Copying, "again")
        .await;
    assert!(
        matches!(reopened, Err(JobError::Transition { .. })),
        "{reopened:?}"
    );
    assert!(undo::abort(&scratch.settings, mv.id)
        .await
        .unwrap_err()
        .to_string()
        .contains("is already aborted"));
    assert_eq!(moves.get(mv.id).await.unwrap().phase, Phase::Aborted);
}
