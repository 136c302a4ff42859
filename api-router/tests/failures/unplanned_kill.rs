//! An unplanned failover under load, through the real HTTP API: shard 1's primary node
//! is lost (its keeper and PostgreSQL killed -9, its failover not held), the topology's
//! pg_auto_failover promotes the standby, and the gateway's watcher records it; the old
//! node is started again (it rejoins as a standby) and shard 1 is switched back to it.
//! Meanwhile the load of `planned_operations` runs (keyed single writes, a keyed bulk
//! writer, keyed transactions across shards 1 and 2, readers) beside two writers
//! without a key.
//!
//! - Every keyed request is answered 2xx, the slowest within `failover.hold_ms` and a
//!   second, and every acknowledged record is read back once (none applied twice).
//! - A write without a key, through a gateway that keys every write
//!   (`failover.key_every_write`, the default), is answered 2xx too, within the same
//!   bound, and applied once: none is answered `503 may-have-committed`.
//! - Through a second gateway with `key_every_write = false`, a write without a key is
//!   answered 2xx (with nothing sent, it waits for the new primary up to
//!   `failover.write_wait_ms`, 10 s as `./setup.sh` sets it under an HA manager), or
//!   `503 may-have-committed` when its primary died with it on the wire: never anything
//!   else. Those answers are counted in `shardgate_writes_may_have_committed_total`, and
//!   how many of them had in fact committed is reported: the answer promises nothing
//!   either way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use control_plane::failover::switchover::switchover;
use serde_json::Value;
use shard_manager::ShardId;
use test_app::spawn_app_with;
use test_support::outage::serial;
use test_support::setup_sh;
use test_support::wait::blocking;

use crate::support::metric_sum;
use crate::under_load::{
    bulk_writer, p99_and_max, reader, transactor, unkeyed_writer, writer, Home, Keys, Seen, WRITERS,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_primary_killed_under_load_fails_no_keyed_request() {
    let _serial = serial().await;
    // As `./setup.sh` configures a gateway under an HA manager: a write with nothing
    // sent waits up to 10 s for a primary, with a key or not.
    let app = spawn_app_with(|s| s.cluster.failover.write_wait_ms = 10_000).await;
    let unkeying = spawn_app_with(|s| {
        s.cluster.failover.write_wait_ms = 10_000;
        s.cluster.failover.key_every_write = false;
    })
    .await;
    let settings = app.settings.cluster.clone();
    if settings.failover.ha_monitor.is_none() {
        panic!("the topology runs no HA manager (HA=0): nothing promotes a standby");
    }
    let hold = settings.failover.hold();
    let Keys {
        keys,
        pairs,
        before,
    } = Keys::written(&app).await;
    let primary = settings.shards[1].primary.clone();
    let metric =
        |name: &'static str, with: &'static str| metric_sum(&app.client, &app.address, name, with);
    let failovers = || metric("shardgate_failovers_total", "shard=\"1\",kind=\"failover\"");
    let failovers_before = failovers().await;
    let in_doubt_metric = || {
        metric_sum(
            &unkeying.client,
            &unkeying.address,
            "shardgate_writes_may_have_committed_total",
            "",
        )
    };
    let in_doubt_before = in_doubt_metric().await;
    let home = Home;

    let stop = AtomicBool::new(false);
    let seen = Seen::default();
    let seen_unkeying = Seen::default();
    let operations = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        eprintln!("unplanned kill: shard1-primary's node killed -9");
        blocking(|| setup_sh(&["pg", "stop", "shard1-primary"])).await;
        // The standby is promoted within seconds (./setup.sh's monitor timings); the
        // node stays down long enough for the load to run against the new primary.
        tokio::time::sleep(Duration::from_secs(12)).await;
        blocking(|| setup_sh(&["pg", "start", "shard1-primary"])).await;
        eprintln!("unplanned kill: shard1-primary's node started again");
        let say = |s: &str| eprintln!("unplanned kill: {s}");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match switchover(&settings, ShardId(1), Some(&primary), "tester", say).await {
                Ok(done) => {
                    eprintln!(
                        "switched back {} -> {}: writes waited {:?}",
                        done.from, done.to, done.paused
                    );
                    break;
                }
                // The old node rejoins as a standby only once it has caught up.
                Err(e) if Instant::now() < deadline => {
                    eprintln!("unplanned kill: switch back not yet: {e}");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Err(e) => panic!("the switch back to {primary}: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::Relaxed);
    };
    let writers = (0..WRITERS).map(|n| writer(&app, &keys, n, &stop, &seen));
    let unkeyed = (0..2).map(|n| unkeyed_writer(&app, &keys, n, &stop, &seen));
    let unkeyed_off = unkeyed_writer(&unkeying, &keys, 2, &stop, &seen_unkeying);
    tokio::join!(
        futures_util::future::join_all(writers),
        futures_util::future::join_all(unkeyed),
        unkeyed_off,
        bulk_writer(&app, &keys, &stop, &seen),
        transactor(&app, &pairs, &stop, &seen),
        reader(&app, &before, &stop, &seen),
        operations,
    );
    drop(home);

    let promoted = failovers().await - failovers_before;
    assert!(
        promoted >= 1.0,
        "the standby's promotion recorded as a failover of shard 1"
    );
    for kind in ["write", "bulk", "transaction", "read", "unkeyed write"] {
        let (n, p99, max) = p99_and_max(&seen, kind);
        eprintln!("{kind}: {n} answered, p99 {p99:?}, longest {max:?}");
    }
    let (_, _, longest) = p99_and_max(&seen, "write");
    assert!(
        longest <= hold + Duration::from_secs(1),
        "a keyed write waited {longest:?}, past the hold bound {hold:?}"
    );
    let (_, _, longest) = p99_and_max(&seen, "unkeyed write");
    assert!(
        longest <= hold + Duration::from_secs(1),
        "a write without a key, keyed by the gateway, waited {longest:?}, past {hold:?}"
    );
    seen.assert_all_answered_and_written_once(&app).await;
    let keyed_by_the_gateway = seen.in_doubt.lock().unwrap().clone();
    assert_eq!(
        keyed_by_the_gateway,
        Vec::<(String, String)>::new(),
        "writes without a key through a gateway that keys every write: none left in doubt"
    );
    assert_eq!(
        metric("shardgate_writes_may_have_committed_total", "").await,
        0.0,
        "a gateway that keys every write answers none may-have-committed"
    );

    // Through the gateway that does not: left in doubt, counted, and looked up.
    seen_unkeying
        .assert_all_answered_and_written_once(&unkeying)
        .await;
    let in_doubt = seen_unkeying.in_doubt.lock().unwrap().clone();
    let counted = in_doubt_metric().await - in_doubt_before;
    let mut committed = 0;
    for (key, id) in &in_doubt {
        let res = unkeying.read_strong(key, "users", id).await;
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert!(matches!(status, 200 | 404), "{key}/{id}: {status} {body}");
        committed += usize::from(status == 200);
    }
    eprintln!(
        "writes without a key: {} answered may-have-committed, {committed} of them had committed",
        in_doubt.len()
    );
    assert_eq!(
        counted,
        in_doubt.len() as f64,
        "may-have-committed answers counted"
    );
}
