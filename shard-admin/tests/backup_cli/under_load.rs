//! A cluster restore point taken under load, then the cluster restored to it
//! (issue #32's main test). Four writers (two per shard) and two transferers (money
//! moved between an account on each shard: both parts prepared, the decision written
//! through the coordinator log a gateway uses, `MetaLog`, then both committed) run
//! while `shard-admin backup` names its point, and for a second after it. Two
//! transfers are held across the point on purpose: one prepared and undecided, one
//! decided and not yet committed. Then every server is stopped and its data directory
//! deleted, `restore --point --yes` brings the cluster back from the repository alone,
//! and, read from the restored servers:
//! - a write is there exactly when its commit preceded the point on its shard (told by
//!   WAL positions read around each commit; the few that straddle the point are left
//!   out), and none sent after the point was recorded is there;
//! - every transfer is on both shards or neither, exactly those whose `commit` the
//!   restored coordinator log holds; money is conserved; none is left prepared: the
//!   held undecided one rolled back, the held decided one committed;
//! - a transfer acknowledged a second before the fence is there, none begun after the
//!   point was recorded.
//!
//! The fence's length under this load is measured by `cargo bench --profile dev -p
//! shard-admin --bench backup`, on the same servers and load (test-support's `backup`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use control_plane::txn::MetaLog;
use shard_manager::cluster::txn::gid;
use shard_manager::cluster::txn::log::{Decision, DecisionLog};

use test_support::backup::load_cluster::{Load, LoadCluster};

use crate::load::{commit_both, connect, prepare_both, Transfer, Write, ACCOUNTS, BOTH, OPENING};
use crate::private;
use crate::{text, SHARD_ADMIN};

#[test]
fn a_point_under_load_restores_what_preceded_it_and_no_half_transfer() {
    if !private::pgbackrest_present() {
        return;
    }
    let up = LoadCluster::start(SHARD_ADMIN);
    let (cluster, cli, settings, [p0, p1], pm) =
        (&up.servers, &up.cli, &up.settings, up.shards, up.meta);
    let shard = |p: u16, sql: &str| cluster.query_on(p, "shardgate", sql);
    let meta = |sql: &str| cluster.query_on(pm, "shardgate_meta", sql);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let log = Arc::new(MetaLog::new(settings.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let Load {
        writers,
        transferers,
    } = up.start_load(&rt, log.clone(), stop.clone());

    // Held across the point: one prepared and undecided, one decided and uncommitted.
    let held = rt.block_on(async { [connect(p0).await, connect(p1).await] });
    let (undecided, decided) = (gid::new_txid(), gid::new_txid());
    rt.block_on(prepare_both(
        &held,
        &undecided,
        ACCOUNTS + 1,
        ACCOUNTS + 1,
        5,
    ));
    rt.block_on(prepare_both(&held, &decided, ACCOUNTS + 2, ACCOUNTS + 2, 7));
    let d = rt.block_on(log.settle(&decided, Decision::Commit, &BOTH));
    assert_eq!(d.expect("the held decision"), Decision::Commit);

    std::thread::sleep(Duration::from_millis(500));
    let out = cli.run(&["backup", "--type", "full"], &[]);
    assert!(
        out.status.success(),
        "backup: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let recorded = meta(
        "SELECT name || ' ' || (extract(epoch FROM created_at) * 1000000)::int8 || ' ' || fence_ms \
         FROM restore_points",
    );
    let mut fields = recorded.split(' ');
    let name = fields.next().unwrap().to_owned();
    let at_us: i64 = fields.next().unwrap().parse().unwrap();
    let fence_ms: i64 = fields.next().unwrap().parse().unwrap();
    let points: Vec<u64> = (0..2)
        .map(|i| {
            meta(&format!(
                "SELECT ((e ->> 'lsn')::pg_lsn - '0/0')::int8 \
                 FROM restore_points, jsonb_array_elements(servers::jsonb) e \
                 WHERE e ->> 'stanza' = 'shard{i}'"
            ))
            .parse()
            .unwrap()
        })
        .collect();

    // After the point: the held ones finish, the load goes on a second.
    rt.block_on(async {
        let d = log.settle(&undecided, Decision::Commit, &BOTH).await;
        assert_eq!(d.expect("decided after the point"), Decision::Commit);
        commit_both(&held, &undecided).await;
        commit_both(&held, &decided).await;
    });
    std::thread::sleep(Duration::from_secs(1));

    stop.store(true, Ordering::Relaxed);
    let writes: Vec<Write> = writers
        .into_iter()
        .flat_map(|h| rt.block_on(h).unwrap())
        .collect();
    let transfers: Vec<Transfer> = transferers
        .into_iter()
        .flat_map(|h| rt.block_on(h).unwrap())
        .collect();
    drop(held);

    // The cluster destroyed: every server stopped and its data directory deleted (the
    // repository, WAL archive included, is all that is left). Then the restore, with
    // --force: no metadata database is left to check for live gateways and moves.
    for stanza in ["shard0", "shard1", "meta"] {
        cluster.stop(stanza);
        std::fs::remove_dir_all(cluster.dir.join(stanza)).expect("delete a data directory");
    }
    let started = Instant::now();
    let out = cli.run(&["restore", "--point", &name, "--yes", "--force"], &[]);
    let printed = text(&out.stdout);
    assert!(
        out.status.success(),
        "restore: {printed}{}",
        text(&out.stderr)
    );
    eprintln!(
        "restore under load took {:.1} s:\n{printed}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        printed.contains("note: the metadata database at "),
        "the metadata server was destroyed too: {printed}"
    );
    assert!(
        printed.contains("prepared at the point: "),
        "the restore says what it finished: {printed}"
    );

    // Writes: there exactly when committed before the point on their shard.
    let present: Vec<std::collections::HashSet<i64>> = [p0, p1]
        .iter()
        .map(|p| {
            shard(
                *p,
                "SELECT coalesce(string_agg(id::text, ' '), '') FROM acks",
            )
            .split_whitespace()
            .map(|s| s.parse().unwrap())
            .collect()
        })
        .collect();
    let (mut before, mut after, mut straddling) = (0, 0, 0);
    for w in &writes {
        let there = present[w.shard].contains(&w.id);
        if w.lsn_after < points[w.shard] {
            assert!(
                there,
                "write {} on shard {} committed before the point is lost",
                w.id, w.shard
            );
            before += 1;
        } else if w.lsn_before > points[w.shard] {
            assert!(
                !there,
                "write {} on shard {} committed after the point is back",
                w.id, w.shard
            );
            after += 1;
        } else {
            straddling += 1;
        }
        if w.sent_us > at_us {
            assert!(
                !there,
                "write {} sent after the point was recorded is back",
                w.id
            );
        }
    }
    eprintln!("writes: {before} before the point (all back), {after} after (none back), {straddling} straddling it");
    assert!(
        before > 0 && after > 0,
        "the load ran on both sides of the point"
    );

    // Transfers: on both shards or neither, exactly the ones the restored log committed.
    let txids = |p: u16| -> std::collections::BTreeSet<String> {
        shard(
            p,
            "SELECT coalesce(string_agg(txid, ' '), '') FROM transfers",
        )
        .split_whitespace()
        .map(str::to_owned)
        .collect()
    };
    let (on0, on1) = (txids(p0), txids(p1));
    assert_eq!(on0, on1, "a transfer is on one shard only");
    let committed: std::collections::BTreeSet<String> =
        meta("SELECT coalesce(string_agg(txid, ' '), '') FROM txn_log WHERE decision = 'commit'")
            .split_whitespace()
            .map(str::to_owned)
            .collect();
    assert_eq!(
        on0, committed,
        "the shards hold exactly the committed transfers"
    );
    assert!(
        on0.contains(&decided),
        "the held decided transfer is committed"
    );
    assert!(
        !on0.contains(&undecided),
        "the held undecided transfer is rolled back"
    );
    for t in &transfers {
        if t.acked_us < at_us - fence_ms * 1000 - 1_000_000 {
            assert!(
                on0.contains(&t.txid),
                "transfer {} acknowledged before the fence is lost",
                t.txid
            );
        }
        if t.begun_us > at_us {
            assert!(
                !on0.contains(&t.txid),
                "transfer {} begun after the point is back",
                t.txid
            );
        }
    }
    let total: i64 = [p0, p1]
        .iter()
        .map(|p| {
            shard(*p, "SELECT sum(balance) FROM accounts")
                .parse::<i64>()
                .unwrap()
        })
        .sum();
    assert_eq!(
        total,
        2 * (ACCOUNTS + 2) * OPENING,
        "money was made or lost"
    );
    for p in [p0, p1] {
        assert_eq!(shard(p, "SELECT count(*) FROM pg_prepared_xacts"), "0");
    }
    eprintln!(
        "transfers: {} run, {} back after the restore",
        transfers.len(),
        on0.len()
    );
}
