//! The shard run by a real HA manager: a private pg_auto_failover formation
//! (`autoctl`: a monitor, a primary and a synchronous secondary). Under two writers, a
//! bulk writer and a reader, the primary's whole machine dies (`kill -9` of its keeper
//! and PostgreSQL); nobody promotes anything by hand. Then: the monitor promoted the
//! secondary, writes resume on it, no acknowledged write is lost or applied twice, no
//! read failed, and the map names the new primary at term 2. The old node's keeper is
//! started again: it rejoins as a secondary (in recovery), and no write reached it
//! (every write acknowledged meanwhile is on the new primary).
//!
//! Skipped, loudly, only when pg_autoctl is not installed and `SHARDGATE_REQUIRE_HA` is
//! unset; `./setup.sh test` installs pg_auto_failover and sets it, so CI always runs it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use shard_manager::ShardId;
use test_support::failover::ha_shard::{self, Before};
use test_support::failover::workload::{bulk_writer, reader, writer, Tally};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_on_pg_auto_failover_loses_its_primary_machine_and_the_old_one_rejoins() {
    let t0 = Instant::now();
    let Some(shard) = ha_shard::start("the failover on pg_auto_failover").await else {
        return;
    };
    let (formation, settings, following) = (&shard.formation, &shard.settings, &shard.following);
    let name = settings.database.dbname.clone();
    let (old, new) = (formation.addr(0), formation.addr(1));
    let cluster = following.cluster.clone();
    let Before {
        acked: before,
        ids: before_ids,
        standby,
    } = shard.before_failure().await;
    eprintln!(
        "[{:?}] formation up, map seeded, 20 records written",
        t0.elapsed()
    );
    let stop = AtomicBool::new(false);
    let tally = Tally::default();
    let failure = async {
        let (acked_before_kill, killed, promoted) =
            ha_shard::kill_primary_under(formation, &standby, &tally).await;
        let resumed = ha_shard::writes_resumed(
            &tally,
            acked_before_kill,
            killed,
            || cluster.shard(ShardId(0)).unwrap().primary.addr == new,
            || formation.show_state(),
        )
        .await;
        eprintln!("after the failover:\n{}", formation.show_state());

        // The old machine back, under the same load: its keeper makes it a secondary.
        let restarted = Instant::now();
        let f = formation.clone();
        tokio::task::spawn_blocking(move || f.restart_node(0))
            .await
            .unwrap();
        // Watches the old node's role while it comes back: writable would be split brain.
        // Writes go on a moment with the old node a secondary again.
        let (rejoined, split_brain) = shard.rejoin(&tally, &stop, Duration::from_secs(60)).await;
        (killed, promoted, resumed, restarted, rejoined, split_brain)
    };
    let (_, _, _, _, (killed, promoted, resumed, restarted, rejoined, split_brain)) = tokio::join!(
        writer(&cluster, "a", &stop, &tally),
        writer(&cluster, "b", &stop, &tally),
        bulk_writer(&cluster, "c", &stop, &tally),
        reader(&cluster, &before_ids, &stop, &tally),
        failure
    );
    let first_write = tally
        .first_ack_after(promoted)
        .expect("a write acknowledged after the promotion");
    eprintln!(
        "pg_auto_failover: kill -9 of the primary's node -> promotion {:?}, first acknowledged \
         write {:?}, 40 more writes {:?}; {} write(s) failed; old node back as a secondary \
         {:?} after its keeper started{}",
        promoted - killed,
        first_write - killed,
        resumed - killed,
        tally.failed.load(Ordering::Relaxed),
        rejoined - restarted,
        if split_brain {
            " (SPLIT-BRAIN WINDOW: the old node was seen writable while it came back)"
        } else {
            ""
        }
    );
    eprintln!("after the rejoin:\n{}", formation.show_state());

    ha_shard::assert_reads_served(&tally);

    // The map names the promoted node, one term later.
    ha_shard::assert_failed_over(settings, &cluster, &old, &new).await;

    // Every acknowledged write on the new primary, once; the old node (a secondary now)
    // holds exactly the same once it has replayed: nothing was written there alone.
    ha_shard::assert_acknowledged_on(formation, 1, &name, &tally, &before);
    ha_shard::assert_replayed(formation, 0, 1, &name).await;
}
