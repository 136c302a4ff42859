//! The automatic balancer's lines in the map's history, through the control plane's
//! library alone (no gateway): load published for one slot-heavy shard, a move already
//! under way, then none. The balancer holds while the move runs (one line, however many
//! checks), writes the rise once, acts (a move line, then the move's own change), and
//! after it writes a hold only when the reason changes. The lines are also the
//! balancer's memory: a runner that takes over from a stopped one keeps its spacing and
//! its hourly cap.
//!
//! It works in scratch databases of its own (`test_support::scratch`), so the shared
//! map never changes; its moves carry no rows. With the environment of `eval "$(./setup.sh env)"`:
//! `SHARDGATE_REPO=$PWD cargo test -p control-plane --test balancer_history`

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use control_plane::map::figures::Published;
use control_plane::map::meta::{self, HistoryLine};
use control_plane::moves::auto_balance::{Balancer, BalancerSettings};
use control_plane::moves::plan::Which;
use control_plane::moves::{mover, undo};
use shard_manager::ShardId;
use test_support::scratch::Scratch;

/// This test's figures: each slot's requests, 8 bytes little-endian each (a gateway
/// publishes its analytics instead; the balancer only sees what `weigh` makes of them).
fn encode(weights: &[u64]) -> Vec<u8> {
    weights.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Each slot's requests summed over every gateway's figures.
fn weigh(published: &[Published], slots: usize) -> Vec<u64> {
    let mut weights = vec![0u64; slots];
    for p in published {
        for (slot, bytes) in p.figures.chunks_exact(8).take(slots).enumerate() {
            weights[slot] += u64::from_le_bytes(bytes.try_into().unwrap());
        }
    }
    weights
}

/// The balancer's lines (notes), oldest first.
async fn notes(scratch: &Scratch) -> Vec<HistoryLine> {
    let client = scratch.meta().await;
    let mut lines = meta::history_lines(&client, 10_000).await.expect("history");
    lines.reverse();
    lines.into_iter().filter(|l| l.note).collect()
}

/// Waits until a note starts with `prefix` (20 s at most).
async fn until_note(scratch: &Scratch, prefix: &str) -> Vec<HistoryLine> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lines = notes(scratch).await;
        if lines.iter().any(|l| l.summary.starts_with(prefix)) {
            return lines;
        }
        let shown: Vec<&str> = lines.iter().map(|l| l.summary.as_str()).collect();
        assert!(
            Instant::now() < deadline,
            "no {prefix:?} within 20 s: {shown:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Publishes `figures` as one gateway's, every 300 ms, until the flag is set.
async fn publish(
    scratch: &Scratch,
    figures: Vec<u8>,
) -> (Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (meta, stopped) = (scratch.meta().await, stop.clone());
    let publisher = tokio::spawn(async move {
        let gateway = uuid::Uuid::new_v4().to_string();
        while !stopped.load(Ordering::Relaxed) {
            meta.execute(
                "INSERT INTO gateway_figures (gateway_id, published_at, figures)
                 VALUES ($1::text::uuid, now(), $2)
                 ON CONFLICT (gateway_id) DO UPDATE
                    SET published_at = now(), figures = excluded.figures",
                &[&gateway, &figures],
            )
            .await
            .expect("publish");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    (stop, publisher)
}

/// The notes since the last runner's start line.
fn since_last_start(lines: &[HistoryLine]) -> Vec<String> {
    let start = lines
        .iter()
        .rposition(|l| l.summary.starts_with("runs on this host"))
        .expect("a runner's start line");
    lines[start + 1..]
        .iter()
        .map(|l| l.summary.clone())
        .collect()
}

/// Waits until the runner started last has written a line other than its rise (20 s
/// at most); its lines since its start.
async fn first_decision_of_the_last_runner(scratch: &Scratch, runners: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lines = notes(scratch).await;
        let starts = lines
            .iter()
            .filter(|l| l.summary.starts_with("runs on this host"))
            .count();
        if starts == runners {
            let since = since_last_start(&lines);
            if since.iter().any(|s| !s.starts_with("hold, above the mean")) {
                return since;
            }
        }
        assert!(
            Instant::now() < deadline,
            "runner {runners} decided nothing within 20 s: {:#?}",
            lines.iter().map(|l| &l.summary).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_new_runner_keeps_the_spacing_and_the_hourly_cap_of_the_one_before() {
    let scratch = Scratch::create().await;
    let map = scratch.map().await;
    // Shard 0 stays well above the mean however many slots the cap lets go.
    let weights: Vec<u64> = map
        .owners
        .iter()
        .map(|o| if *o == ShardId(0) { 10 } else { 1 })
        .collect();
    let (stop, publisher) = publish(&scratch, encode(&weights)).await;
    let settings = BalancerSettings {
        auto: true,
        margin_percent: 25,
        hold_secs: 1,
        spacing_secs: 600,
        max_slots_per_hour: 2,
        check_secs: 1,
    };

    // The first runner moves the hour's two slots, then holds for the spacing (its
    // check after the moves ended).
    let first = Balancer::spawn(scratch.settings.clone(), settings.clone(), weigh).expect("auto");
    let lines = until_note(&scratch, "hold, spacing: ").await;
    drop(first);
    let move_lines = |lines: &[HistoryLine]| {
        lines
            .iter()
            .filter(|l| l.summary.starts_with("move, "))
            .count()
    };
    let first_moves = move_lines(&lines);
    let moved = scratch.map().await;
    assert_eq!(moved.version.0, map.version.0 + first_moves as u64);
    let on_zero = |m: &shard_manager::live_map::ShardMap| {
        m.owners.iter().filter(|o| **o == ShardId(0)).count()
    };
    assert_eq!(on_zero(&map) - on_zero(&moved), 2, "the cap: two slots");

    // A second runner (the first one's lock gone with its connection): still within
    // the spacing of the first runner's move.
    let second = Balancer::spawn(scratch.settings.clone(), settings.clone(), weigh).expect("auto");
    let since = first_decision_of_the_last_runner(&scratch, 2).await;
    assert!(
        since.iter().all(|s| !s.starts_with("move, ")),
        "the second runner moved within the spacing: {since:#?}"
    );
    assert!(
        since
            .iter()
            .any(|s| s.starts_with("hold, spacing: the last move was")),
        "{since:#?}"
    );
    drop(second);

    // A third runner that would move at once (no spacing): the hour's cap is spent.
    let unspaced = BalancerSettings {
        spacing_secs: 0,
        ..settings
    };
    let third = Balancer::spawn(scratch.settings.clone(), unspaced, weigh).expect("auto");
    let since = first_decision_of_the_last_runner(&scratch, 3).await;
    assert!(
        since.iter().all(|s| !s.starts_with("move, ")),
        "the third runner moved past the hour's cap: {since:#?}"
    );
    assert!(
        since
            .iter()
            .any(|s| s == "hold, hourly cap: 2 slots moved in the last hour, the cap is 2"),
        "{since:#?}"
    );
    // A few more checks: still no move, and the map as the first runner left it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(third);
    stop.store(true, Ordering::Relaxed);
    publisher.await.unwrap();
    let lines = notes(&scratch).await;
    assert_eq!(move_lines(&lines), first_moves, "{lines:#?}");
    assert_eq!(scratch.map().await.version, moved.version);
}

#[tokio::test]
async fn the_balancer_writes_each_decision_and_each_change_of_reason_once() {
    let scratch = Scratch::create().await;
    let map = scratch.map().await;
    // Shard 0's slots take ten requests each, the others' one: shard 0 is well above
    // the mean, and stays so (the figures are per slot, published every 300 ms).
    let weights: Vec<u64> = map
        .owners
        .iter()
        .map(|o| if *o == ShardId(0) { 10 } else { 1 })
        .collect();
    let (stop, publisher) = publish(&scratch, encode(&weights)).await;
    // A move under way (recorded, not run) before the balancer starts.
    let slot = map
        .owners
        .iter()
        .position(|o| *o == ShardId(1))
        .expect("a slot of shard 1");
    let request = mover::Request {
        kind: "move-slots".into(),
        from: 1,
        to: 2,
        which: Which::List(slot.to_string()),
    };
    let running = mover::start(&scratch.settings, &request)
        .await
        .expect("a move recorded");
    let settings = BalancerSettings {
        auto: true,
        margin_percent: 25,
        hold_secs: 2,
        spacing_secs: 600,
        max_slots_per_hour: 2,
        check_secs: 1,
    };
    let balancer = Balancer::spawn(scratch.settings.clone(), settings, weigh).expect("auto");

    // Four checks or more while the move is recorded: one line.
    until_note(&scratch, "hold, move running: ").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let held = notes(&scratch).await;
    let running_lines = held
        .iter()
        .filter(|l| l.summary.starts_with("hold, move running: "))
        .count();
    assert_eq!(running_lines, 1, "{held:#?}");
    assert!(
        held.iter().any(|l| l
            .summary
            .contains(&format!("move {} (shard-1 -> shard-2)", running.id))),
        "{held:#?}"
    );

    // The move ends (aborted): the balancer sees the rise, holds it 2 s, then acts.
    undo::abort(&scratch.settings, running.id)
        .await
        .expect("abort");
    until_note(&scratch, "move, ").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    publisher.await.unwrap();
    drop(balancer);

    let lines = notes(&scratch).await;
    let summaries: Vec<&str> = lines.iter().map(|l| l.summary.as_str()).collect();
    eprintln!("{summaries:#?}");
    assert!(
        summaries[0].starts_with("runs on this host"),
        "{summaries:#?}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.action == "balancer" && l.actor.starts_with("balancer@")),
        "{lines:#?}"
    );
    let kind = |s: &str| s.split(':').next().unwrap().to_owned();
    let kinds: Vec<String> = summaries[1..].iter().map(|s| kind(s)).collect();
    // Holds are written when their reason changes, never twice in a row.
    assert!(
        kinds
            .windows(2)
            .all(|w| w[0] != w[1] || w[0].starts_with("move, ")),
        "{summaries:#?}"
    );
    let first_move = kinds
        .iter()
        .position(|k| k.starts_with("move, "))
        .expect("a move line");
    assert_eq!(
        kinds[..first_move],
        ["hold, move running", "hold, above the mean"],
        "{summaries:#?}"
    );
    // Within the hour's cap of two slots, from the busy shard; the map changed once per
    // move, after its line, and the line names the version it saw.
    let moved: Vec<&HistoryLine> = lines
        .iter()
        .filter(|l| l.summary.starts_with("move, "))
        .collect();
    assert!(
        moved.iter().all(|l| l.summary.contains("from shard-0 ")),
        "{moved:#?}"
    );
    let after = scratch.map().await;
    assert_eq!(
        after.version.0,
        map.version.0 + moved.len() as u64,
        "{summaries:#?}"
    );
    assert_eq!(moved[0].version, map.version.0);
    let on_zero = |m: &shard_manager::live_map::ShardMap| {
        m.owners.iter().filter(|o| **o == ShardId(0)).count()
    };
    assert_eq!(on_zero(&map) - on_zero(&after), 2, "the cap: two slots");
    // After the move: holds only (spacing, as the load stays uneven), each written once.
    let rest = &kinds[first_move + moved.len()..];
    assert!(!rest.is_empty(), "no hold after the move: {summaries:#?}");
    assert!(
        rest.iter().all(|k| k.starts_with("hold, ")),
        "{summaries:#?}"
    );
    assert!(rest.len() <= 2, "the history flooded: {summaries:#?}");
}
