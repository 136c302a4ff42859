//! The same failure as the synchronous pair test, on a pair in asynchronous mode
//! (`Replication::Async`: the primary acknowledges a commit once it has it, and the
//! replica follows as fast as it can). Four writers on the request path (two single,
//! one bulk, one that waits for a replica as `x-durability: replica` does) and a reader
//! run while the primary's postmaster is killed (-9) and its replica promoted by hand a
//! second later. Then, read from the promoted replica: what was lost is exactly what
//! the replica had not received, and nothing else.
//!
//! - Every acknowledged write whose WAL position (its token, at or past its commit's
//!   record) is at or before the promoted replica's switch point (the end of what it
//!   replayed from the old primary) is there, at the version acknowledged: so every
//!   lost write lies past that point. None is applied twice.
//! - Every write acknowledged with `x-durability: replica` is there.
//! - Writes resume on the new primary, and no read failed.
//!
//! Run twice. With a healthy replica (streaming, a few ms behind), the lost writes are
//! at most those acknowledged in the last moments before the kill. With a lagging one:
//! [`LAG`] before the kill the replica stops receiving (its `primary_conninfo` emptied;
//! it goes on serving reads and can be promoted). That models a replica `LAG` behind
//! its primary when the primary dies (a slow link, a busy disk, a link cut for that
//! long); every write sent after it stopped receiving and acknowledged is lost, and
//! what was acknowledged before it stopped is not. (Pausing the replica's *replay*
//! would model nothing: a promotion first replays all WAL already received.)

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use control_plane::map::meta;
use shard_manager::{Lsn, MapVersion};
use test_support::failover::harness::{self, OnPair};
use test_support::failover::workload::{
    bulk_writer, count_sql, lost_and_twice, parse_versions, reader, stored_versions_sql,
    write_before, writer, writes, Acked, Tally, Writes,
};
use test_support::private::pair::Replication;

/// How far behind the lagging replica is when its primary dies.
const LAG: Duration = Duration::from_millis(400);

/// A lost write of a healthy replica was acknowledged at most this long before the
/// kill. Measured in 11 runs: none lost in 9; in 2, one and two writes, acknowledged
/// 16 and 24 ms *after* the kill (a backend finishing its commit once the postmaster,
/// and so the WAL sender, had gone). The rest is a margin for a loaded 2-core machine.
const HEALTHY_WINDOW: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_shard_loses_at_most_the_writes_of_its_last_moments() {
    let loss = failover_in_async_mode(None).await;
    if let Some(first) = loss.first_lost_ack {
        assert!(
            loss.killed.saturating_duration_since(first) <= HEALTHY_WINDOW,
            "a lost write acknowledged {:?} before the kill",
            loss.killed - first
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_shard_whose_replica_lags_loses_exactly_what_it_had_not_received() {
    let loss = failover_in_async_mode(Some(LAG)).await;
    let stopped = loss.stopped.expect("the replica stopped receiving");
    // Every write sent after the replica stopped receiving and acknowledged before the
    // kill (by the old primary, then) is lost.
    let after: Vec<&Acked> = (loss.acked.iter())
        .filter(|a| a.sent >= stopped && a.at < loss.killed)
        .collect();
    assert!(after.len() > 10, "writes during the lag: {}", after.len());
    let kept: Vec<&&Acked> = after
        .iter()
        .filter(|a| !loss.lost.contains(&a.id))
        .collect();
    assert!(
        kept.is_empty(),
        "sent after the replica stopped, yet kept: {kept:?}"
    );
    // And nothing acknowledged before it stopped receiving.
    let first = loss.first_lost_ack.expect("writes lost");
    assert!(
        first >= loss.cut.expect("cut"),
        "a write acknowledged {:?} before the replica was cut off was lost",
        loss.cut.unwrap() - first
    );
}

/// What a failover in asynchronous mode lost.
struct Loss {
    /// Every acknowledged single write (primary-acknowledged writers).
    acked: Vec<Acked>,
    /// The ids of those not on the promoted replica.
    lost: HashSet<String>,
    /// The earliest acknowledgement among them.
    first_lost_ack: Option<Instant>,
    killed: Instant,
    /// When the replica was told to stop receiving, and when it had (lagging run only).
    cut: Option<Instant>,
    stopped: Option<Instant>,
}

/// The failover under load, `lag` after the replica stopped receiving (None: a healthy
/// replica), and the checks both runs share.
async fn failover_in_async_mode(lag: Option<Duration>) -> Loss {
    let up = OnPair::start("fo-async", 26820..26850, Replication::Async).await;
    let (pair, settings, following) = (&up.pair, &up.settings, &up.following);
    let name = settings.database.dbname.clone();
    let cluster = following.cluster.clone();

    let before = write_before(&cluster, 20).await;
    let before_ids: Vec<String> = before.iter().map(|a| a.id.clone()).collect();
    let stop = AtomicBool::new(false);
    let (tally, durable) = (Tally::default(), Tally::default());
    let on_replica = Writes {
        on_replica: true,
        ..Writes::PACED
    };
    let failure = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let mut cut = None;
        if let Some(lag) = lag {
            let asked = Instant::now();
            let p = pair.clone();
            let received = tokio::task::spawn_blocking(move || p.stop_replica_receiving())
                .await
                .unwrap();
            let stopped = Instant::now();
            eprintln!(
                "the replica stopped receiving at {received}, {:?} after it was asked; \
                 the primary is killed {lag:?} later",
                stopped - asked
            );
            cut = Some((asked, stopped));
            tokio::time::sleep(lag).await;
        }
        let p = pair.clone();
        let received = tokio::task::spawn_blocking(move || {
            p.query(
                p.replica_port,
                "postgres",
                "SELECT pg_last_wal_receive_lsn()",
            )
        })
        .await
        .unwrap();
        let done = harness::fail_over(pair, &cluster, &tally).await;
        stop.store(true, Ordering::Relaxed);
        (done.killed, cut, received, done.resumed - done.killed)
    };
    let (_, _, _, _, _, (killed, cut, received, resumed)) = tokio::join!(
        writer(&cluster, "a", &stop, &tally),
        writer(&cluster, "b", &stop, &tally),
        bulk_writer(&cluster, "c", &stop, &tally),
        writes(&cluster, "d", &stop, &durable, on_replica),
        reader(&cluster, &before_ids, &stop, &tally),
        failure
    );
    eprintln!("40 more writes acknowledged {resumed:?} after the kill");

    // Reads were served throughout; the map names the new primary at term 2.
    assert_eq!(
        tally.reads_failed.load(Ordering::Relaxed),
        0,
        "reads failed"
    );
    assert!(tally.reads_served.load(Ordering::Relaxed) > 50);
    let mut meta_conn = meta::connect(settings).await.expect("metadata");
    let map = meta::load(&mut meta_conn.client).await.unwrap().unwrap();
    assert_eq!(map.version, MapVersion(2));
    assert_eq!(
        (map.shards[0].primary.clone(), map.shards[0].term),
        (pair.replica(), 2)
    );

    // What the promoted replica kept: all it had received, and nothing after.
    let switch = pair.switch_point();
    eprintln!("received before the kill {received}, promoted replica's switch point {switch}");
    let (received, switch) = (Lsn::parse(&received).unwrap(), Lsn::parse(&switch).unwrap());
    assert!(switch >= received, "the promotion dropped received WAL");

    // Every acknowledged write at or before the switch point is there, once.
    let acked = tally.acked.lock().unwrap().clone();
    let on_new = |all: &[Acked]| {
        let expected: Vec<(String, i64)> = all.iter().map(|a| (a.id.clone(), a.version)).collect();
        parse_versions(&pair.query(pair.replica_port, &name, &stored_versions_sql(&expected)))
    };
    let stored = on_new(&acked);
    let twice: Vec<_> = stored
        .iter()
        .filter(|(id, v)| acked.iter().any(|a| &a.id == id && a.version != *v))
        .collect();
    assert!(twice.is_empty(), "applied twice: {twice:?}");
    let present: HashSet<&str> = stored.iter().map(|(id, _)| id.as_str()).collect();
    let lost: Vec<&Acked> = acked
        .iter()
        .filter(|a| !present.contains(a.id.as_str()))
        .collect();
    let kept_wrongly: Vec<_> = lost.iter().filter(|a| a.lsn <= switch).collect();
    assert!(
        kept_wrongly.is_empty(),
        "lost although at or before the switch point {switch}: {kept_wrongly:?}"
    );
    // The writes before the load, and those a replica had applied, are all there, once.
    let written_before = Tally::default().expected(&before);
    assert_eq!(on_new(&before), written_before, "records written before");
    let durable_acked = durable.acked.lock().unwrap().clone();
    assert_eq!(
        lost_and_twice(&durable.expected(&[]), &on_new(&durable_acked)),
        (0, 0),
        "writes acknowledged once a replica applied them: lost, applied twice"
    );

    let bulk = tally.acked_bulk.lock().unwrap().clone();
    let bulk_present: usize = pair
        .query(pair.replica_port, &name, &count_sql(&bulk))
        .parse()
        .unwrap();
    let first_lost_ack = lost.iter().map(|a| a.at).min();
    let last_lost_ack = lost.iter().map(|a| a.at).max();
    // "12 ms before the kill", "3 ms after the kill".
    let around_kill = |t: Instant| match killed.checked_duration_since(t) {
        Some(d) => format!("{} ms before the kill", d.as_millis()),
        None => format!("{} ms after the kill", (t - killed).as_millis()),
    };
    eprintln!(
        "async, {}: acknowledged {} single writes, lost {} (window: first lost acknowledged {}, \
         last {}), applied twice 0; bulk records acknowledged {}, lost {}; \
         acknowledged on a replica {}, lost 0 ({} failed); {} write(s) failed",
        match lag {
            Some(lag) => format!("replica stopped receiving {lag:?} before the kill"),
            None => "healthy replica".into(),
        },
        acked.len(),
        lost.len(),
        first_lost_ack.map_or("-".into(), around_kill),
        last_lost_ack.map_or("-".into(), around_kill),
        bulk.len(),
        bulk.len() - bulk_present,
        durable_acked.len(),
        durable.failed.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    Loss {
        lost: lost.iter().map(|a| a.id.clone()).collect(),
        first_lost_ack,
        acked,
        killed,
        cut: cut.map(|c| c.0),
        stopped: cut.map(|c| c.1),
    }
}
