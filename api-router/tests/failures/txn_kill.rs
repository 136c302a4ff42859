//! Two-phase commit across a coordinator's crash: the real binary (feature `faults`) is
//! killed (-9) in the middle of a transfer between two shards at each kill point:
//! `after-prepare` (both parts prepared, nothing logged), `after-decision` (`commit`
//! logged, nothing committed), `between-commits` (the first part committed). Another
//! gateway's recovery then resolves what it left: nothing stays prepared, every
//! transaction it saw prepared has a decision in the coordinator log, and the data is
//! all or nothing: the transfer fully applied when the decision was logged, fully
//! absent otherwise. No server is stopped: this test runs alone or beside others.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use serde_json::json;
use test_app::gateway_process::Process;
use test_app::{prepare_database, test_settings};
use test_support::outage::{serial, DropDatabase};

use crate::support::keys_on;
use crate::txn_support::{self, balance, logged, prepared, RollBackLeftovers};

#[tokio::test]
async fn a_coordinator_killed_at_each_point_leaves_all_or_nothing() {
    // Stops no server, but must not run beside a test that does.
    let _serial = serial().await;
    let mut settings = test_settings();
    prepare_database(&mut settings).await;
    let db = DropDatabase(settings.cluster.database.dbname.clone());
    let (primaries, meta_url) = txn_support::urls(&settings);
    let (url_a, url_b) = (primaries[0].clone(), primaries[1].clone());
    let _leftovers = RollBackLeftovers(vec![url_a.clone(), url_b.clone()]);
    let keys_a = keys_on(&settings, 0, 3);
    let keys_b = keys_on(&settings, 1, 3);
    // Recovery: parts older than 500 ms are resolved, a round every 200 ms.
    let fast_recovery = [
        ("SHARDGATE__SERVER__TXN_IN_DOUBT_MS", "500"),
        ("SHARDGATE__SERVER__TXN_RECOVERY_MS", "200"),
    ];

    for (round, (point, applied)) in [
        ("after-prepare", false),
        ("after-decision", true),
        ("between-commits", true),
    ]
    .into_iter()
    .enumerate()
    {
        let (a, b) = (&keys_a[round], &keys_b[round]);
        let mut env = vec![("SHARDGATE_FAULT_KILL_GATEWAY", point)];
        // The dying gateway's own recovery must not resolve anything first.
        env.push(("SHARDGATE__SERVER__TXN_IN_DOUBT_MS", "600000"));
        let mut doomed = Process::start(&db.0, &env).await;
        let transfer = json!({"operations": [
            {"table": "users", "shard_key": a, "id": a, "data": {"balance": 90}, "if_version": 0},
            {"table": "users", "shard_key": b, "id": b, "data": {"balance": 10}, "if_version": 0},
        ]});
        let answer = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/api/transaction", doomed.port))
            .timeout(Duration::from_secs(10))
            .json(&transfer)
            .send()
            .await;
        assert!(answer.is_err(), "{point}: the gateway answered {answer:?}");
        let exit = doomed.died_within(Duration::from_secs(5)).await;
        assert_eq!(exit.signal(), Some(9), "{point}: {}", doomed.output());
        assert!(doomed.output().contains(&format!("fault point {point}")));

        // What the crash left: prepared parts, and a decision or none.
        let left: Vec<String> = [&url_a, &url_b].iter().flat_map(|u| prepared(u)).collect();
        let txids: Vec<String> = left
            .iter()
            .filter_map(|g| shard_manager::cluster::txn::gid::parse(g).map(|(t, _)| t))
            .collect();
        match point {
            "between-commits" => assert_eq!(left.len(), 1, "{point}: one part left: {left:?}"),
            _ => assert_eq!(left.len(), 2, "{point}: both parts prepared: {left:?}"),
        }
        let decided_before: Vec<_> = logged(&meta_url)
            .into_iter()
            .filter(|(t, _)| txids.contains(t))
            .collect();
        match applied {
            true => assert!(
                decided_before.iter().all(|(_, d)| d == "commit") && !decided_before.is_empty(),
                "{point}: {decided_before:?}"
            ),
            false => assert!(decided_before.is_empty(), "{point}: {decided_before:?}"),
        }

        // Another gateway resolves it.
        let started = Instant::now();
        let fresh = Process::start(&db.0, &fast_recovery).await;
        while !prepared(&url_a).is_empty() || !prepared(&url_b).is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{point}: still prepared after 60 s: {}",
                fresh.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let resolved_in = started.elapsed();
        let log = logged(&meta_url);
        for txid in &txids {
            let decision = log.iter().find(|(t, _)| t == txid).map(|(_, d)| d.as_str());
            let wanted = if applied { "commit" } else { "abort" };
            assert_eq!(decision, Some(wanted), "{point}: {txid} decided in the log");
        }
        let seen = (balance(&url_a, a), balance(&url_b, b));
        match applied {
            true => assert_eq!(seen, (Some(90), Some(10)), "{point}: fully applied"),
            false => assert_eq!(seen, (None, None), "{point}: fully absent"),
        }
        eprintln!("{point}: {} part(s) left prepared, resolved by another gateway in {resolved_in:?}, applied: {applied}", left.len());
        drop(fresh);
    }
}
