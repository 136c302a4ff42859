//! `move_across_failover` on a real HA manager (issue #30): shard 0 is a private
//! pg_auto_failover formation (`ha_shard`: a monitor, node 0 the primary, node 1 its
//! synchronous secondary), shard 1 a plain primary (`Pair::alone`, two_shards' ports
//! 26750-26799, under the failover tests' lock). 256 slots move between them under two
//! writers, and node 0's whole machine (its keeper and its PostgreSQL) is killed (-9)
//! at a chosen step of the move:
//! - shard 0 the source, killed right after the copy's first group (64 slots) committed;
//! - shard 0 the target, killed at the same point;
//! - shard 0 the source, killed as the move reaches the switch (before its fence).
//!
//! Nobody promotes by hand: the monitor promotes node 1, the failover watcher records
//! it in the map, and the mover (not restarted) waits, reads the map again and finishes
//! on node 1. pg_auto_failover promotes read-only (`default_transaction_read_only`)
//! and lifts that only once node 0 is given up, seconds later; the watcher, seeing node
//! 1 out of recovery, has usually put it in the map by then, so the mover usually
//! meets it read-only (SQLSTATE 25006) and waits on that too. Then the same checks as
//! on the pair: the move is done, the map (v3) gives the slots to the target and names
//! node 1 at term 2, every acknowledged write is stored once at its acknowledged
//! version on its owner only, and the source holds no rows of the moved slots and no
//! change log. The output's `TIMINGS` line gives kill -> promoted (out of recovery),
//! -> writable, and -> move done.
//!
//! Skipped, loudly, only when pg_autoctl is not installed and `SHARDGATE_REQUIRE_HA` is
//! unset, as `on_autoctl` is.

use std::time::Instant;

use test_support::failover::ha_shard;
use test_support::private::placement::Placement;

use crate::move_across_failover::{move_across, When};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_move_whose_source_node_dies_while_copying_finishes_after_pg_auto_failover() {
    on_autoctl(0, When::Copying).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_move_whose_target_node_dies_while_copying_finishes_after_pg_auto_failover() {
    on_autoctl(1, When::Copying).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_move_whose_source_node_dies_at_the_switch_finishes_after_pg_auto_failover() {
    on_autoctl(0, When::Switching).await;
}

/// The scenario with shard 0 on a formation and shard 1 beside it.
async fn on_autoctl(from: u32, when: When) {
    let t0 = Instant::now();
    let what = "a slot move across a failover on pg_auto_failover";
    let plain = Some(26750..26800);
    let Some(shards) = ha_shard::start_beside(what, Placement::loopback(), "", plain).await else {
        return;
    };
    assert_eq!(
        (shards.init.version.0, shards.init.shards[0].term),
        (1, 1),
        "the seeded map"
    );
    shards.assert_synchronous();
    eprintln!("[{:?}] formation and shard 1 up, map seeded", t0.elapsed());
    move_across(&shards, "pg_auto_failover", from, when, t0).await;
    eprintln!("once done:\n{}", shards.formation.show_state());
}
