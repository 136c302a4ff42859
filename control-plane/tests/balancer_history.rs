//! The automatic balancer's lines in the map's history, through the control plane's
//! library alone (no gateway): load published for one slot-heavy shard, a move already
//! under way, then none. The balancer holds while the move runs (one line, however many
//! checks), writes the rise once, acts (a move line, then the move's own change), and
//! after it writes a hold only when the reason changes.
//!
//! It works in scratch databases of its own ([`scratch`]), so the shared map never
//! changes; its moves carry no rows. With the environment of `eval "$(./setup.sh env)"`:
//! `SHARDGATE_REPO=$PWD cargo test -p control-plane --test balancer_history`

mod scratch;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use control_plane::map::figures::Published;
use control_plane::map::meta::{self, HistoryLine};
use control_plane::moves::auto_balance::{Balancer, BalancerSettings};
use control_plane::moves::plan::Which;
use control_plane::moves::{mover, undo};
use scratch::Scratch;
use shard_manager::ShardId;

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
    let figures = encode(&weights);
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (meta, stop) = (scratch.meta().await, stop.clone());
        tokio::spawn(async move {
            let gateway = uuid::Uuid::new_v4().to_string();
            while !stop.load(Ordering::Relaxed) {
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
        })
    };
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
