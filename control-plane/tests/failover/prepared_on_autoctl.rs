//! `prepared_across_failover` on a real HA manager (issue #31): shard 0 is a private
//! pg_auto_failover formation (node 0 the primary, node 1 its synchronous secondary),
//! shard 1 a plain primary (`Pair::alone`, two_shards' ports 26750-26799, under the
//! failover tests' lock). The same two transactions through the coordinator and the
//! real `MetaLog`: `undecided` left prepared with no decision, `decided` with `commit`
//! logged, then node 0's whole machine killed (-9 of its keeper and PostgreSQL) before
//! COMMIT PREPARED. Nobody promotes by hand: the monitor promotes node 1. Then the same
//! checks: node 1 holds both shard-0 parts, the recovery (its bound past the promotion)
//! commits `decided` there and rolls `undecided` back on both shards, the rows are as
//! the decisions say, nothing is prepared anywhere, and the map names node 1 at term 2.
//!
//! Skipped, loudly, only when pg_autoctl is not installed and `SHARDGATE_REQUIRE_HA` is
//! unset, as `on_autoctl` is.

use std::time::{Duration, Instant};

use test_support::failover::ha_shard;
use test_support::private::placement::Placement;

use crate::prepared_across_failover::prepare_and_kill;

/// The recovery's bound: past pg_auto_failover's promotion (2-4 s after the kill in
/// the other tests), so the parts are seen on node 1 before the recovery touches them.
const BOUND: Duration = Duration::from_secs(10);

/// Node 0's settings from its first start (node 1 is cloned with them): prepared
/// transactions allowed, as in `pair`.
const CONF: &str = "max_prepared_transactions = 20\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_transaction_survives_pg_auto_failover_promoting_its_secondary() {
    let t0 = Instant::now();
    let what = "prepared transactions across a failover on pg_auto_failover";
    let plain = Some(26750..26800);
    let Some(shards) = ha_shard::start_beside(what, Placement::loopback(), CONF, plain).await
    else {
        return;
    };
    // Synchronous replication to node 1, which is in recovery.
    let standby = shards.before_failure().await.standby;
    eprintln!("[{:?}] formation and shard 1 up, map seeded", t0.elapsed());
    let prepared = prepare_and_kill(&shards, BOUND).await;
    eprintln!(
        "[{:?}] node 0's machine killed after the decision",
        t0.elapsed()
    );
    // Nobody but the monitor promotes.
    let promoted = ha_shard::promoted(&shards.formation, &standby, prepared.killed).await;
    let promoted = promoted - prepared.killed;
    prepared.check_resolved(&shards, promoted).await;
    eprintln!("once resolved:\n{}", shards.formation.show_state());
    eprintln!("[{:?}] done", t0.elapsed());
}
