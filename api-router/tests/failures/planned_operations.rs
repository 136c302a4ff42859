//! Planned operations under load, through the real HTTP API: clients writing keyed
//! records (each write its own `Idempotency-Key`, never retried by the client), reading,
//! bulk writing and running transactions across shards, while shard 1's primary is
//! handed to its replica and back (`shard-admin switchover`, on the topology's real
//! pg_auto_failover) and 16 slots move from shard 0 to shard 2 and 16 from shard 2 to
//! shard 0 (`shard-admin move-slots`). Every request is answered 2xx, their p99 stays
//! within 1.5 s, and every acknowledged write is read back once: each record is
//! written by one request only, so a second application would show as an update
//! (`updated_at` after `created_at`) and, for a single write, as a version past the one
//! its answer gave.
//!
//! Should the test fail between the switchovers, the topology's primaries are put
//! back on their first nodes (`./setup.sh ha home`) for the tests after it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use control_plane::failover::switchover::switchover;
use shard_manager::ShardId;
use test_app::{move_slots, spawn_app};
use test_support::outage::serial;

use crate::support::metric_sum;
use crate::under_load::{
    bulk_writer, p99_and_max, reader, transactor, watcher, writer, Home, Keys, Seen, P99, WRITERS,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn switchovers_and_slot_moves_under_load_fail_no_request() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let settings = app.settings.cluster.clone();
    if settings.failover.ha_monitor.is_none() {
        panic!("the topology runs no HA manager (HA=0): nothing to switch over");
    }
    let Keys {
        keys,
        pairs,
        before,
    } = Keys::written(&app).await;
    let (primary, replica) = (settings.shards[1].primary.clone(), app.replica(1));
    let home = Home;

    let stop = AtomicBool::new(false);
    let seen = Seen::default();
    let operations = async {
        let say = |s: &str| eprintln!("planned operations: {s}");
        tokio::time::sleep(Duration::from_secs(1)).await;
        for to in [&replica, &primary] {
            let done = switchover(&settings, ShardId(1), Some(to), "tester", say)
                .await
                .unwrap_or_else(|e| panic!("the switchover to {to}: {e}"));
            eprintln!(
                "switchover {} -> {}: writes waited {:?}",
                done.from, done.to, done.paused
            );
            assert!(done.old_is_standby, "{} back as a standby", done.from);
        }
        for (from, to) in [(0, 2), (2, 0)] {
            let done = move_slots(&settings, from, to, 16).await;
            eprintln!("move {from} -> {to}: writes paused {:?} ms", done.fence_ms);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::Relaxed);
    };
    let writers = (0..WRITERS).map(|n| writer(&app, &keys, n, &stop, &seen));
    let (_, _, _, _, _, _, (most_held, handed_over)) = tokio::join!(
        futures_util::future::join_all(writers),
        bulk_writer(&app, &keys, &stop, &seen),
        transactor(&app, &pairs, &stop, &seen),
        reader(&app, &before, &stop, &seen),
        reader(&app, &before, &stop, &seen),
        operations,
        watcher(&app, &stop),
    );
    drop(home);
    // The pause showed as it happened, as the dashboard draws it.
    eprintln!("/api/shards showed up to {most_held} requests held, handovers of {handed_over:?}");
    assert_eq!(handed_over, vec![1], "shard 1's handover shown");
    assert!(most_held > 0, "requests shown held during the switchovers");

    for kind in ["write", "bulk", "transaction", "read"] {
        let (n, p99, max) = p99_and_max(&seen, kind);
        eprintln!("{kind}: {n} answered, p99 {p99:?}, longest {max:?}");
        assert!(p99 <= P99, "{kind}: p99 {p99:?} over {P99:?}");
    }
    // The pauses were holds: handovers seen, requests held and released, none at a bound.
    let metric =
        |name: &'static str, with: &'static str| metric_sum(&app.client, &app.address, name, with);
    let handovers = metric("shardgate_handovers_total", "").await;
    let released = metric("shardgate_requests_held_total", "released").await;
    let timed_out = metric("shardgate_requests_held_total", "timed_out").await;
    let refused = metric("shardgate_requests_held_total", "refused_at_bound").await;
    eprintln!("{handovers} handovers; held requests: {released} released, {timed_out} timed out, {refused} refused at the bound");
    // (The second switchover may fall within the first one's hold: one handover.)
    assert!(handovers >= 1.0, "a handover seen: {handovers}");
    assert!(released > 0.0, "requests were held, then released");
    assert_eq!((timed_out, refused), (0.0, 0.0));
    seen.assert_all_answered_and_written_once(&app).await;
}
